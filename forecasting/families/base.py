"""The interface every model family implements, its forecasts, and its saved container format."""

from __future__ import annotations

import io
import json
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from forecasting.families.hyperparameters import Spec, check_hyperparameters
from forecasting.families.inputs import IDENTITY_LINK, FeatureInputs, ForecastContributions
from forecasting.intervals import NOMINAL_COVERAGE, ConformalCalibration, interval_groups
from forecasting.known_inputs import HolidayRegion, closed_days, closure_keys
from forecasting.panel import DateLike, Panel, to_timestamp

CONTAINER_FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
# A fixed timestamp in the zip entries keeps the bytes (and so the sha256) of a model stable.
ZIP_ENTRY_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True, eq=False)
class Forecasts:
    """Point forecasts and 80% interval bounds, [n_series, horizon], for consecutive days."""

    stores: np.ndarray
    products: np.ndarray
    dates: pd.DatetimeIndex
    values: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    @property
    def horizon(self) -> int:
        return len(self.dates)

    def series_keys(self) -> pd.MultiIndex:
        return pd.MultiIndex.from_arrays([self.stores, self.products], names=["store", "product"])

    def to_frame(self) -> pd.DataFrame:
        """One row per series and target date: store, product, target_date, value, lower, upper."""
        n_series, horizon = self.values.shape
        return pd.DataFrame(
            {
                "store": np.repeat(self.stores, horizon),
                "product": np.repeat(self.products, horizon),
                "target_date": np.tile(self.dates.values, n_series),
                "value": self.values.reshape(-1),
                "lower": self.lower.reshape(-1),
                "upper": self.upper.reshape(-1),
            }
        )


@dataclass(frozen=True)
class WarmStart:
    """Refits that continue an earlier fit instead of starting over (boosted families).

    A fit keeps the first n - `rounds` trees of the latest earlier fit whose training ended no
    later than its own (so nothing newer than its own training days reaches it) and fits
    `rounds` new trees on its own training days; every `full_refit_every`-th fit of a chain
    starts over, so old trees do not pile up.
    """

    rounds: int = 20
    full_refit_every: int = 4

    def __post_init__(self) -> None:
        if self.rounds < 1 or self.full_refit_every < 1:
            raise ValueError("warm start needs rounds >= 1 and full_refit_every >= 1")


class RefitSession:
    """What successive fits of one recipe on runs of days of one panel can share: a
    walk-forward refits at every cutoff on the days before it.

    This base session shares nothing; a family that can reuse work between such fits (features,
    feature bins, trees) returns its own from `ForecastModel.refit_session`.

    `fits_at_once`: how many fits the session's walk-forward may run at the same time, each in
    its own thread (a family's session that trains in native code without the GIL and is safe
    to share between threads says more than one).
    """

    fits_at_once: int = 1

    def __init__(self, panel: Panel, *, warm_start: WarmStart | None = None) -> None:
        self.panel = panel
        self.warm_start = warm_start

    def covers(self, window: Panel) -> bool:
        """Whether `window` is a run of the session panel's days: a view of it over the same
        series (what `Panel.until` and `Panel.window` return), so work done on the panel's days
        serves it."""
        return (
            window.stores is self.panel.stores
            and window.n_days > 0
            and np.may_share_memory(window.quantity, self.panel.quantity)
        )

    def first_day_of(self, window: Panel) -> int:
        """Position in the session panel of the window's first day."""
        return self.panel.day_position(window.dates[0])

    def last_day_of(self, window: Panel) -> int:
        """Position in the session panel of the window's last day."""
        return self.panel.day_position(window.dates[-1])

    def plan(self, runs: list[Panel]) -> None:
        """The runs of days the session's fits will train on, in order (see
        `ForecastModel.training_runs`): a session may prepare the next while one trains."""

    def close(self) -> None:
        """Release what the session holds (background work included)."""

    def __enter__(self) -> RefitSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# Called by `fit` while the model holds its fit without the calibration's held-out weeks: the
# model, the panel it is fitted on, and the first held-out day.
HeldOutHook = Callable[["ForecastModel", Panel, pd.Timestamp], None]


class ForecastModel(ABC):
    """A forecasting recipe: hyperparameters in, `fit` on a panel, `predict` from a start day.

    `fit` also calibrates the 80% intervals: it refits on the panel less its last
    `calibration_windows` weeks, forecasts a week from every day of those weeks (out of
    sample, as the daily forecast does), and keeps per-step quantiles of the residuals; then
    it fits on the whole panel.
    """

    algorithm: ClassVar[str]
    # Inputs known ahead of the target days that the family reads (see known_inputs.py):
    # "promotion_calendar" (the planned promotions of the target days, as seen at the cutoff).
    known_inputs: ClassVar[tuple[str, ...]] = ()
    default_hyperparameters: ClassVar[dict[str, Any]] = {}
    common_hyperparameters: ClassVar[dict[str, Any]] = {"calibration_windows": 4}
    # What each hyperparameter may be (forecasting/families/hyperparameters.py); a family adds
    # its own in `hyperparameter_specs`.
    common_hyperparameter_specs: ClassVar[dict[str, Spec]] = {
        "calibration_windows": Spec(int, minimum=0, maximum=52),
    }
    hyperparameter_specs: ClassVar[dict[str, Spec]] = {}
    calibration_window_days: ClassVar[int] = 7
    # Days of history below which calibration is skipped (too little left to fit on).
    minimum_training_days: ClassVar[int] = 14
    # Whether a refit session's `WarmStart` continues earlier fits (boosted families); the
    # others refit every window whatever it says.
    warm_starts: ClassVar[bool] = False
    # Whether `explain` splits each forecast exactly into per-feature contributions.
    exact_contributions: ClassVar[bool] = False

    def __init__(self, **hyperparameters: Any) -> None:
        allowed = {**self.common_hyperparameters, **self.default_hyperparameters}
        unknown = sorted(set(hyperparameters) - set(allowed))
        if unknown:
            raise ValueError(
                f"{self.algorithm} has no hyperparameter(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(allowed))}"
            )
        check_hyperparameters(type(self), hyperparameters)
        self._hyperparameters = {**allowed, **hyperparameters}
        self.calibration: ConformalCalibration | None = None
        self.fitted = False
        # Known from the training panel: where its stores are, and the days they close.
        self.holiday_region: HolidayRegion | None = None
        self.closures: tuple[str, ...] = ()

    @classmethod
    def specs(cls) -> dict[str, Spec]:
        """The declared type and range of each hyperparameter that has one."""
        return {**cls.common_hyperparameter_specs, **cls.hyperparameter_specs}

    @property
    def hyperparameters(self) -> dict[str, Any]:
        return dict(self._hyperparameters)

    @property
    @abstractmethod
    def features(self) -> list[str]:
        """Names of the inputs the model reads."""

    # -- training and forecasting -------------------------------------------------------------

    def fit(
        self,
        panel: Panel,
        *,
        session: RefitSession | None = None,
        on_held_out: HeldOutHook | None = None,
    ) -> ForecastModel:
        """Train on every day of `panel` and calibrate the intervals; returns self. A refit
        `session` (from `refit_session` on a panel that `panel` is a run of days of) lets
        successive fits share work. `on_held_out` is called once the calibration's fit,
        which did not see the held-out weeks, is in place (not at all without calibration):
        what it measures of the model is measured out of sample, at no extra fit."""
        if panel.n_series == 0 or panel.n_days == 0:
            raise ValueError("cannot fit on an empty panel")
        self.holiday_region = panel.holiday_region
        self.closures = closure_keys(panel, panel.holiday_region)
        twin = self._point_twin(panel, session)
        if twin is None:
            self._calibrate_and_measure(panel, session, on_held_out)
            self._fit_point(panel, session)
        else:
            # The point fit trains in a thread of its own while this model calibrates.
            with ThreadPoolExecutor(max_workers=1) as pool:
                point_fit = pool.submit(twin._fit_point, panel, None)
                self._calibrate_and_measure(panel, session, on_held_out)
                point_fit.result()
            self._take_point_fit(twin)
        self.fitted = True
        return self

    def _calibrate_and_measure(
        self, panel: Panel, session: RefitSession | None, on_held_out: HeldOutHook | None
    ) -> None:
        self.calibration = self._calibrate(panel, session)
        if on_held_out is not None and self.calibration is not None:
            on_held_out(self, panel, self._calibration_start(panel))

    def _point_twin(self, panel: Panel, session: RefitSession | None) -> ForecastModel | None:
        """A model of the same recipe to fit the point forecaster on `panel` while this one
        calibrates, or None to fit one after the other (the default). A family whose training
        runs outside Python's lock and scales worse than two fits side by side returns one."""
        return None

    def _take_point_fit(self, twin: ForecastModel) -> None:
        """Take the point forecaster that `twin` (from `_point_twin`) fitted."""
        raise NotImplementedError(f"{self.algorithm} fits its point forecaster itself")

    def training_runs(self, panel: Panel) -> list[Panel]:
        """The runs of days `fit(panel)` trains on, in order: the interval calibration's fit
        on the panel less its held-out weeks (when it calibrates), then the point fit."""
        calibration_start = self._calibration_start(panel)
        return [panel] if calibration_start is None else [panel.until(calibration_start), panel]

    def refit_session(self, panel: Panel, *, warm_start: WarmStart | None = None) -> RefitSession:
        """A session for fits of this recipe on runs of `panel`'s days. Families with nothing
        to reuse return the base session, and ignore `warm_start`."""
        return RefitSession(panel, warm_start=warm_start)

    def predict(self, panel: Panel, start: DateLike, horizon: int = 7) -> Forecasts:
        """Forecast `horizon` days from `start` for every series of `panel`, from its days
        before `start` (and its promotion flags on the target days, as planned promotions)."""
        if not self.fitted:
            raise RuntimeError(f"{self.algorithm} model is not fitted")
        start = to_timestamp(start)
        dates = pd.date_range(start, periods=horizon, freq="D", name="date")
        history = panel.until(start)
        values = self._predict_point(
            history=history,
            future_promotion=planned_promotions(panel=panel, dates=dates),
            dates=dates,
        ).astype(np.float32)
        values = np.maximum(values, 0.0)
        # The stores close on these days every year: nothing will be sold.
        closed = closed_days(dates, self.holiday_region, self.closures)
        values[:, closed] = 0.0
        if self.calibration is None:
            lower = upper = np.full_like(values, np.nan)
        else:
            lower, upper = self.calibration.interval(
                values, groups=interval_groups(panel.departments, values)
            )
            unforecast = np.isnan(values)
            lower[unforecast] = upper[unforecast] = np.nan
            lower[:, closed] = upper[:, closed] = 0.0
        return Forecasts(
            stores=panel.stores,
            products=panel.products,
            dates=dates,
            values=values,
            lower=lower,
            upper=upper,
        )

    def _calibration_start(self, panel: Panel) -> pd.Timestamp | None:
        """First held-out day of the interval calibration; None when it is off or the panel
        is too short for it."""
        held_out_days = int(self._hyperparameters["calibration_windows"]) * (
            self.calibration_window_days
        )
        if held_out_days <= 0 or panel.n_days < held_out_days + self.minimum_training_days:
            return None
        return panel.dates[panel.n_days - held_out_days]

    def _calibrate(
        self, panel: Panel, session: RefitSession | None = None
    ) -> ConformalCalibration | None:
        calibration_start = self._calibration_start(panel)
        if calibration_start is None:
            return None
        windows = int(self._hyperparameters["calibration_windows"])
        window_days = self.calibration_window_days
        self._fit_point(panel.until(calibration_start), session)
        actual, forecast = [], []
        # A cutoff on every held-out day, not one a week: the daily forecast makes its first
        # step on every weekday, so each step's residuals must come from every weekday too.
        for day in range(windows * window_days):
            cutoff = calibration_start + pd.Timedelta(days=day)
            dates = pd.date_range(cutoff, periods=window_days, freq="D")
            # Residuals of forecasts made as the daily forecast makes them: with the target
            # days' promotions as known at the cutoff, not as they turned out.
            predicted = self._predict_point(
                history=panel.until(cutoff),
                future_promotion=planned_promotions(panel=panel.as_seen_at(cutoff), dates=dates),
                dates=dates,
            )
            forecast.append(np.maximum(predicted, 0.0))
            first = panel.day_position(cutoff)
            known = np.full((panel.n_series, window_days), np.nan, dtype=np.float32)
            held_out = panel.quantity[:, first : first + window_days]
            known[:, : held_out.shape[1]] = held_out
            actual.append(known)
        return ConformalCalibration.from_residuals(
            actual=np.concatenate(actual),
            forecast=np.concatenate(forecast),
            nominal_coverage=NOMINAL_COVERAGE,
            groups=interval_groups(
                np.tile(panel.departments, len(forecast)), np.concatenate(forecast)
            ),
        )

    @abstractmethod
    def _fit_point(self, panel: Panel, session: RefitSession | None = None) -> None:
        """Fit the point forecaster on every day of `panel` (sharing work through `session`
        when the family can)."""

    @abstractmethod
    def _predict_point(
        self, *, history: Panel, future_promotion: np.ndarray, dates: pd.DatetimeIndex
    ) -> np.ndarray:
        """Point forecasts [n_series, len(dates)] from `history` (days before dates[0])."""

    # -- one day's forecast, feature by feature ---------------------------------------------------

    @property
    def link(self) -> str:
        """How the model's raw output becomes units (`forecasting.families.inputs`)."""
        return IDENTITY_LINK

    def first_step_inputs(
        self, *, history: Panel, future_promotion: np.ndarray, dates: pd.DatetimeIndex
    ) -> FeatureInputs:
        """What the forecast of dates[0] reads from `history` (days before dates[0]) and the
        target days' planned promotions, one row per series and a column per feature."""
        raise NotImplementedError(f"{self.algorithm} does not expose its inputs")

    def predict_first_step(self, inputs: FeatureInputs) -> np.ndarray:
        """The point forecasts of the first target day from `first_step_inputs` (before the
        floor at zero), one per row."""
        raise NotImplementedError(f"{self.algorithm} does not expose its inputs")

    def feature_contributions(self, inputs: FeatureInputs) -> tuple[np.ndarray, np.ndarray]:
        """Exact contributions [rows, features] of each feature to `predict_first_step` and the
        base value of each row, in the model's output space (families with
        `exact_contributions`)."""
        raise NotImplementedError(f"{self.algorithm} has no exact per-feature contributions")

    def explain(self, panel: Panel, start: DateLike, *, step: int) -> ForecastContributions:
        """The exact contributions to the forecasts `predict(panel, start)` makes of the day
        `step` days after `start` (families with `exact_contributions`)."""
        raise NotImplementedError(f"{self.algorithm} has no exact per-feature contributions")

    # -- saved state --------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The fitted model as a zip of a JSON manifest and the family's binary parts."""
        if not self.fitted:
            raise RuntimeError(f"{self.algorithm} model is not fitted")
        manifest = {
            "format_version": CONTAINER_FORMAT_VERSION,
            "algorithm": self.algorithm,
            "hyperparameters": self._hyperparameters,
            "features": self.features,
            "known_inputs": list(self.known_inputs),
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "state": self._state_metadata(),
            "holiday_region": None
            if self.holiday_region is None
            else self.holiday_region.to_dict(),
            "closures": list(self.closures),
        }
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            parts = {MANIFEST_NAME: json.dumps(manifest, sort_keys=True).encode()}
            parts.update(self._state_blobs())
            for name, data in parts.items():
                archive.writestr(zipfile.ZipInfo(name, date_time=ZIP_ENTRY_TIME), data)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ForecastModel:
        """A fitted model from `to_bytes` output; raises ValueError if it is another family's."""
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            manifest = json.loads(archive.read(MANIFEST_NAME))
            if manifest.get("algorithm") != cls.algorithm:
                raise ValueError(
                    f"artifact holds a {manifest.get('algorithm')!r} model, not {cls.algorithm!r}"
                )
            blobs = {
                name: archive.read(name) for name in archive.namelist() if name != MANIFEST_NAME
            }
        model = cls(**manifest["hyperparameters"])
        if manifest["calibration"] is not None:
            model.calibration = ConformalCalibration.from_dict(manifest["calibration"])
        model.holiday_region = HolidayRegion.from_dict(manifest.get("holiday_region"))
        model.closures = tuple(manifest.get("closures", ()))
        model._load_state(metadata=manifest["state"], blobs=blobs)
        model.fitted = True
        return model

    def _state_metadata(self) -> dict[str, Any]:
        """JSON-serialisable fitted state (encodings, scalers)."""
        return {}

    def _state_blobs(self) -> dict[str, bytes]:
        """Binary fitted state (booster, tensors), by file name."""
        return {}

    def _load_state(self, *, metadata: dict[str, Any], blobs: dict[str, bytes]) -> None:
        """Restore what `_state_metadata` and `_state_blobs` saved (nothing by default)."""
        return None


def planned_promotions(*, panel: Panel, dates: pd.DatetimeIndex) -> np.ndarray:
    """Promotion flags [n_series, len(dates)] of the target days as far as the panel has them
    (0 beyond its last day)."""
    flags = np.zeros((panel.n_series, len(dates)), dtype=np.float32)
    if not panel.n_days:
        return flags
    positions = np.array([(day - panel.dates[0]).days for day in dates])
    inside = (positions >= 0) & (positions < panel.n_days)
    flags[:, inside] = panel.on_promotion[:, positions[inside]]
    return flags


def recent_history_with_future(
    *,
    history: Panel,
    future_promotion: np.ndarray,
    dates: pd.DatetimeIndex,
    lookback_days: int,
) -> tuple[np.ndarray, np.ndarray, pd.DatetimeIndex]:
    """The `lookback_days` before dates[0] followed by the target days, as [series, day]
    quantity (NaN where unknown, and on every target day) and promotions (the target days'
    as planned), with the dates of those columns."""
    horizon = len(dates)
    quantity = np.full((history.n_series, lookback_days + horizon), np.nan, dtype=np.float32)
    promotion = np.zeros_like(quantity)
    # Days between the history's end and the first target day are unknown (left NaN).
    gap = 0 if not history.n_days else (dates[0] - history.dates[-1]).days - 1
    kept = max(0, min(lookback_days - gap, history.n_days))
    if kept:
        end = lookback_days - gap
        quantity[:, end - kept : end] = history.quantity[:, history.n_days - kept :]
        promotion[:, end - kept : end] = history.on_promotion[:, history.n_days - kept :]
    promotion[:, lookback_days:] = future_promotion
    all_dates = pd.date_range(
        dates[0] - pd.Timedelta(days=lookback_days), periods=lookback_days + horizon, freq="D"
    )
    return quantity, promotion, all_dates
