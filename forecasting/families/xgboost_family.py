"""One global XGBoost model over all series, forecasting recursively day by day."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import numpy as np
import pandas as pd
import xgboost as xgb

from forecasting.families.base import (
    ForecastModel,
    RefitSession,
    WarmStart,
    planned_promotions,
    recent_history_with_future,
)
from forecasting.families.hyperparameters import Spec
from forecasting.families.inputs import (
    IDENTITY_LINK,
    LOG_LINK,
    FeatureInputs,
    ForecastContributions,
)
from forecasting.features import (
    FEATURE_NAMES,
    LOOKBACK_DAYS,
    CategoryEncodings,
    PanelTrainingRows,
    build_features,
    model_features,
    training_rows,
)
from forecasting.known_inputs import closed_days
from forecasting.panel import DateLike, Panel, to_timestamp

BOOSTER_FILE = "booster.ubj"


def usable_cores() -> int:
    """The cores this process may run on (a worker pinned to one core trains on one thread)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # no affinity on this platform
        return os.cpu_count() or 1


def _frame(features: np.ndarray, names: Sequence[str]) -> pd.DataFrame:
    """The model's columns of a feature matrix (`names`: a prefix of FEATURE_NAMES, see
    `model_features`), as a DataFrame over it without a copy."""
    return pd.DataFrame(features[:, : len(names)], columns=list(names), copy=False)


def quantile_matrix(
    features: np.ndarray,
    target: np.ndarray,
    *,
    max_bin: int,
    nthread: int,
    ref: xgb.QuantileDMatrix | None = None,
    names: Sequence[str] = FEATURE_NAMES,
) -> xgb.QuantileDMatrix:
    """XGBoost's training matrix of column-major float32 features (the model's `names` of
    them); raises ValueError when there are no known targets."""
    if not target.size:
        raise ValueError("no known sales to train on")
    # QuantileDMatrix bins the float32 features once, without a float copy of its own. A
    # DataFrame over the column-major matrix (no copy) hands XGBoost one contiguous array per
    # feature, which it bins in about half the time of a 2-D array.
    return xgb.QuantileDMatrix(
        _frame(features, names),
        label=target,
        max_bin=max_bin,
        nthread=nthread,
        ref=ref,
    )


class _RowBatches(xgb.DataIter):
    """Training rows handed to XGBoost a batch at a time (`PanelTrainingRows.batches`); XGBoost
    reads them twice (counting, then binning), each batch freed once it is binned."""

    def __init__(
        self,
        batches: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]],
        names: Sequence[str],
    ) -> None:
        self._batches, self._names = batches, names
        self._iterator: Iterator[tuple[np.ndarray, np.ndarray]] | None = None
        self.n_rows = 0
        super().__init__(release_data=True)

    def reset(self) -> None:
        self._iterator = None

    def next(self, input_data: Callable) -> bool:
        if self._iterator is None:
            self._iterator, self.n_rows = self._batches(), 0
        batch = next(self._iterator, None)
        if batch is None:
            return False
        features, target = batch
        self.n_rows += len(target)
        input_data(data=_frame(features, self._names), label=target)
        return True


def batched_quantile_matrix(
    batches: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]],
    *,
    max_bin: int,
    nthread: int,
    ref: xgb.QuantileDMatrix | None = None,
    names: Sequence[str] = FEATURE_NAMES,
) -> xgb.QuantileDMatrix:
    """`quantile_matrix` of training rows that come in batches (`batches()` starts them over):
    the same matrix, without the whole float32 run in memory at once."""
    rows = _RowBatches(batches, names)
    matrix = xgb.QuantileDMatrix(rows, max_bin=max_bin, nthread=nthread, ref=ref)
    if not matrix.num_row():
        raise ValueError("no known sales to train on")
    return matrix


def panel_matrix(
    panel: Panel,
    *,
    encodings: CategoryEncodings,
    max_bin: int,
    nthread: int,
    ref: xgb.QuantileDMatrix | None = None,
) -> xgb.QuantileDMatrix:
    """`quantile_matrix` of the panel's training rows (`training_rows`), with its model's
    features (`model_features`)."""
    features, target = training_rows(panel=panel, encodings=encodings)
    return quantile_matrix(
        features,
        target,
        max_bin=max_bin,
        nthread=nthread,
        ref=ref,
        names=model_features(panel.holiday_region),
    )


def _matrix(inputs: FeatureInputs, names: Sequence[str]) -> np.ndarray:
    """The feature rows as the booster reads them: float32, one column per feature in order."""
    return np.column_stack([inputs.columns[name] for name in names]).astype(np.float32)


def _same_run(window: Panel, other: Panel) -> bool:
    return (
        window.n_days == other.n_days
        and window.n_days > 0
        and window.dates[0] == other.dates[0]
        and window.stores is other.stores
    )


@dataclass(frozen=True, eq=False)
class _SessionFit:
    last_day: int
    booster: xgb.Booster
    warm_fits: int


class XGBoostRefitSession(RefitSession):
    """Refits of one XGBoost recipe on runs of one panel's days share:

    - the feature rows, built once for the panel (`PanelTrainingRows`);
    - the feature bins: the earliest planned run's quantile cuts bin every other fit's features
      (`QuantileDMatrix(ref=...)`), which skips the quantile sketch. That run holds the
      earliest days, so the cuts hold nothing from after any fit's cutoff;
    - the machine. Refitting every run from scratch, two fits train at once, each on half of
      the cores (`fits_at_once`, `threads_per_fit`): boosting on two threads keeps each
      thread waiting for the other at every tree level, two single-threaded fits do not (on
      two cores, 13 weekly refits trained in 0.83 of the time one at a time on both). With a
      `WarmStart`, each fit continues an earlier one, so fits train one at a time on every
      core while a background thread builds the next planned run's training matrix (binning
      with known cuts gives the same matrix whenever it is built);
    - with a `WarmStart`, trees: see `WarmStart`.
    """

    def __init__(
        self, panel: Panel, *, max_bin: int, nthread: int, warm_start: WarmStart | None = None
    ) -> None:
        super().__init__(panel, warm_start=warm_start)
        self.fits_at_once = 2 if warm_start is None and nthread >= 2 else 1
        self.threads_per_fit = max(nthread // self.fits_at_once, 1)
        # Any matrix binned with the earliest run's cuts serves as the reference: the latest
        # built one is kept, so an earlier one is freed once its fit is done.
        self.reference: xgb.QuantileDMatrix | None = None
        self._max_bin = max_bin
        self._rows: PanelTrainingRows | None = None
        self._lock = threading.Lock()
        self._rows_lock = threading.Lock()
        self._first: tuple[Panel, xgb.QuantileDMatrix] | None = None
        self._fits: list[_SessionFit] = []
        self._planned: list[Panel] = []
        self._next_planned = 0
        self._prepared: Future | None = None
        self._executor: ThreadPoolExecutor | None = None

    def plan(self, runs: list[Panel]) -> None:
        self._planned, self._next_planned = list(runs), 0

    def training_matrix(self, window: Panel) -> xgb.QuantileDMatrix:
        """The training matrix of a run of the panel's days (safe to ask from several threads
        when `fits_at_once` is more than one)."""
        if self.fits_at_once == 1:
            matrix = self._prepared_matrix(window)
        else:
            with self._lock:
                if self.reference is None:
                    first = self._planned[0] if self._planned else window
                    self.reference = self._build_matrix(first, ref=None)
                    if _same_run(first, window):
                        return self.reference
                    self._first = (first, self.reference)
                elif self._first is not None and _same_run(self._first[0], window):
                    (_, matrix), self._first = self._first, None
                    return matrix
            matrix = self._build_matrix(window, ref=self.reference)
        self.reference = matrix
        return matrix

    def _prepared_matrix(self, window: Panel) -> xgb.QuantileDMatrix:
        """One fit at a time: the matrix prepared in the background when `window` is the next
        planned run; starts preparing the one after it."""
        planned = self._next_planned < len(self._planned) and _same_run(
            window, self._planned[self._next_planned]
        )
        prepared, self._prepared = self._prepared, None
        if planned and prepared is not None:
            matrix = prepared.result()
        else:
            if prepared is not None:
                prepared.cancel()
            matrix = self._build_matrix(window, ref=self.reference)
        if planned:
            self._next_planned += 1
            if self._next_planned < len(self._planned):
                self._executor = self._executor or ThreadPoolExecutor(max_workers=1)
                self._prepared = self._executor.submit(
                    self._build_matrix,
                    self._planned[self._next_planned],
                    ref=matrix,
                    nthread=1,
                )
        return matrix

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        self._prepared = None
        self._first = None

    def _build_matrix(
        self,
        window: Panel,
        *,
        ref: xgb.QuantileDMatrix | None,
        nthread: int | None = None,
    ) -> xgb.QuantileDMatrix:
        nthread = self.threads_per_fit if nthread is None else nthread
        encodings = CategoryEncodings.fit(panel=window)
        if window.n_days <= LOOKBACK_DAYS:
            return panel_matrix(
                window, encodings=encodings, max_bin=self._max_bin, nthread=nthread, ref=ref
            )
        with self._rows_lock:
            if self._rows is None or self._rows.encodings != encodings:
                self._rows = PanelTrainingRows(panel=self.panel, encodings=encodings)
            rows = self._rows
        first_day = self.first_day_of(window)
        return batched_quantile_matrix(
            lambda: rows.batches(first_day=first_day, n_days=window.n_days),
            max_bin=self._max_bin,
            nthread=nthread,
            ref=ref,
            names=model_features(self.panel.holiday_region),
        )

    def continued_fit(self, window: Panel) -> _SessionFit | None:
        """The fit a warm-started fit on `window` continues: the latest one whose training
        ended no later than the window's; None for a full refit."""
        if self.warm_start is None:
            return None
        last_day = self.last_day_of(window)
        earlier = [fit for fit in self._fits if fit.last_day <= last_day]
        if not earlier:
            return None
        latest = max(earlier, key=lambda fit: fit.last_day)
        return latest if latest.warm_fits + 1 < self.warm_start.full_refit_every else None

    def record(self, window: Panel, booster: xgb.Booster, *, continued: _SessionFit | None):
        if self.warm_start is None:
            return
        warm_fits = 0 if continued is None else continued.warm_fits + 1
        self._fits.append(
            _SessionFit(last_day=self.last_day_of(window), booster=booster, warm_fits=warm_fits)
        )


# Regression objectives that take zero-sale days (gamma needs every target above zero).
OBJECTIVES = (
    "reg:squarederror",
    "reg:absoluteerror",
    "reg:pseudohubererror",
    "reg:tweedie",
    "count:poisson",
)


class XGBoostModel(ForecastModel):
    """Gradient-boosted trees on lags, rolling statistics, calendar, promotion and category codes.

    Multi-step strategy: recursive. One model serves every horizon step, and each step reads the
    freshest lag (lag_1 of day h is the forecast of day h - 1). A direct strategy would train one
    model per step, seven times the retraining cost for a 7-day horizon, while the errors that
    recursion compounds over seven days are small next to the day-to-day noise of retail counts.
    """

    algorithm: ClassVar[str] = "xgboost"
    exact_contributions: ClassVar[bool] = True
    known_inputs: ClassVar[tuple[str, ...]] = ("promotion_calendar",)
    warm_starts: ClassVar[bool] = True
    default_hyperparameters: ClassVar[dict[str, Any]] = {
        "n_estimators": 200,
        "max_depth": 8,
        "learning_rate": 0.08,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "min_child_weight": 10.0,
        "objective": "reg:squarederror",
        "max_bin": 256,
        "seed": 0,
    }
    hyperparameter_specs: ClassVar[dict[str, Spec]] = {
        "n_estimators": Spec(int, minimum=1, maximum=5000),
        "max_depth": Spec(int, minimum=1, maximum=20),
        "learning_rate": Spec(float, minimum=0, maximum=1, above=True),
        "subsample": Spec(float, minimum=0, maximum=1, above=True),
        "colsample_bytree": Spec(float, minimum=0, maximum=1, above=True),
        "min_child_weight": Spec(float, minimum=0, maximum=10_000),
        "objective": Spec(str, choices=OBJECTIVES),
        "max_bin": Spec(int, minimum=2, maximum=1024),
        "seed": Spec(int, minimum=0, maximum=2**31 - 1),
    }

    def __init__(self, **hyperparameters: Any) -> None:
        super().__init__(**hyperparameters)
        self.booster: xgb.Booster | None = None
        self.encodings: CategoryEncodings | None = None
        # Threads a fit trains on; None: every usable core.
        self._threads: int | None = None

    @property
    def features(self) -> list[str]:
        """The booster's features (versions trained before the holiday features were left out
        for panels without a region have all of them)."""
        if self.booster is not None and self.booster.feature_names:
            return list(self.booster.feature_names)
        return list(model_features(self.holiday_region))

    def booster_parameters(self) -> dict[str, Any]:
        """Parameters for `xgboost.train` (hist trees, seeded, every CPU core)."""
        settings = self._hyperparameters
        return {
            "tree_method": "hist",
            "max_depth": int(settings["max_depth"]),
            "eta": float(settings["learning_rate"]),
            "subsample": float(settings["subsample"]),
            "colsample_bytree": float(settings["colsample_bytree"]),
            "min_child_weight": float(settings["min_child_weight"]),
            "objective": settings["objective"],
            "max_bin": int(settings["max_bin"]),
            "seed": int(settings["seed"]),
            "nthread": self._threads or usable_cores(),
        }

    def _point_twin(self, panel: Panel, session: RefitSession | None) -> XGBoostModel | None:
        """Outside a walk-forward (whose session already trains two fits at once), a fit that
        calibrates trains its two boosters side by side, each on half of the cores: the
        calibration's on the panel less its held-out weeks, and the point forecaster's."""
        self._threads = None  # what an earlier fit that failed may have left
        cores = usable_cores()
        if session is not None or cores < 2 or self._calibration_start(panel) is None:
            return None
        twin = type(self)(**self._hyperparameters)
        self._threads = twin._threads = cores // 2
        return twin

    def _take_point_fit(self, twin: ForecastModel) -> None:
        twin = cast(XGBoostModel, twin)
        self.booster, self.encodings, self._threads = twin.booster, twin.encodings, None
        # Forecasts from here on read on every core.
        self.booster.set_param({"nthread": usable_cores()})

    def refit_session(
        self, panel: Panel, *, warm_start: WarmStart | None = None
    ) -> XGBoostRefitSession:
        parameters = self.booster_parameters()
        return XGBoostRefitSession(
            panel,
            max_bin=parameters["max_bin"],
            nthread=parameters["nthread"],
            warm_start=warm_start,
        )

    def _fit_point(self, panel: Panel, session: RefitSession | None = None) -> None:
        self.encodings = CategoryEncodings.fit(panel=panel)
        parameters = self.booster_parameters()
        if isinstance(session, XGBoostRefitSession) and session.covers(panel):
            training = session.training_matrix(panel)
            parameters["nthread"] = session.threads_per_fit
        else:
            session = None
            training = panel_matrix(
                panel,
                encodings=self.encodings,
                max_bin=parameters["max_bin"],
                nthread=parameters["nthread"],
            )
        rounds = int(self._hyperparameters["n_estimators"])
        continued = None if session is None else session.continued_fit(panel)
        kept = None
        if continued is not None:
            kept_rounds = rounds - session.warm_start.rounds
            if kept_rounds > 0:
                kept, rounds = continued.booster[:kept_rounds], session.warm_start.rounds
            else:
                continued = None
        self.booster = xgb.train(parameters, training, num_boost_round=rounds, xgb_model=kept)
        if session is not None:
            session.record(panel, self.booster, continued=continued)

    @property
    def link(self) -> str:
        """How the booster's raw output becomes units: Poisson and Tweedie objectives model
        the log of the mean."""
        log_objectives = ("reg:tweedie", "count:poisson")
        return LOG_LINK if self._hyperparameters["objective"] in log_objectives else IDENTITY_LINK

    def _step_features(
        self,
        *,
        history: Panel,
        future_promotion: np.ndarray,
        dates: pd.DatetimeIndex,
    ) -> tuple[np.ndarray, Callable[[int], np.ndarray]]:
        """The quantities of the recent days and the target days ([series, day]; a recursion
        writes its forecasts into the target days), and a function giving the feature rows of
        target day `step` from them as they are when it is called."""
        quantity, promotion, all_dates = recent_history_with_future(
            history=history,
            future_promotion=future_promotion,
            dates=dates,
            lookback_days=LOOKBACK_DAYS,
        )
        department_codes = self.encodings.department_codes(history.departments)
        store_codes = self.encodings.store_codes(history.stores)

        def features_of(step: int) -> np.ndarray:
            return build_features(
                quantity=quantity,
                on_promotion=promotion,
                dates=all_dates,
                department_codes=department_codes,
                store_codes=store_codes,
                first_day=LOOKBACK_DAYS + step,
                last_day=LOOKBACK_DAYS + step + 1,
                holiday_region=self.holiday_region,
            )

        return quantity, features_of

    def _recursive(
        self,
        *,
        history: Panel,
        future_promotion: np.ndarray,
        dates: pd.DatetimeIndex,
        keep_step: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Point forecasts [n_series, len(dates)], each day's lags read from the days before
        it (forecasts, past the history), and the feature rows of day `keep_step`."""
        quantity, features_of = self._step_features(
            history=history, future_promotion=future_promotion, dates=dates
        )
        kept = None
        n_features = len(self.features)
        for step in range(len(dates)):
            features = features_of(step)[:, :n_features]
            if step == keep_step:
                kept = features
            predicted = self.booster.inplace_predict(features, validate_features=False)
            quantity[:, LOOKBACK_DAYS + step] = np.maximum(predicted, 0.0)
        return quantity[:, LOOKBACK_DAYS:], kept

    def _predict_point(
        self, *, history: Panel, future_promotion: np.ndarray, dates: pd.DatetimeIndex
    ) -> np.ndarray:
        forecasts, _ = self._recursive(
            history=history, future_promotion=future_promotion, dates=dates
        )
        return forecasts

    def first_step_inputs(
        self, *, history: Panel, future_promotion: np.ndarray, dates: pd.DatetimeIndex
    ) -> FeatureInputs:
        _, features_of = self._step_features(
            history=history, future_promotion=future_promotion[:, :1], dates=dates[:1]
        )
        features = features_of(0)
        return FeatureInputs(
            columns={name: features[:, column] for column, name in enumerate(self.features)}
        )

    def predict_first_step(self, inputs: FeatureInputs) -> np.ndarray:
        return self.booster.inplace_predict(_matrix(inputs, self.features), validate_features=False)

    def feature_contributions(self, inputs: FeatureInputs) -> tuple[np.ndarray, np.ndarray]:
        return self._contributions(_matrix(inputs, self.features))

    def _contributions(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # XGBoost's own TreeSHAP: exact for the trees, the last column is the base value, and
        # each row adds up to the booster's raw output (its margin).
        matrix = xgb.DMatrix(features, feature_names=self.features)
        contributions = self.booster.predict(matrix, pred_contribs=True, validate_features=False)
        return contributions[:, :-1], contributions[:, -1]

    def explain(self, panel: Panel, start: DateLike, *, step: int) -> ForecastContributions:
        if not self.fitted:
            raise RuntimeError(f"{self.algorithm} model is not fitted")
        start = to_timestamp(start)
        dates = pd.date_range(start, periods=step + 1, freq="D", name="date")
        _, features = self._recursive(
            history=panel.until(start),
            future_promotion=planned_promotions(panel=panel, dates=dates),
            dates=dates,
            keep_step=step,
        )
        contributions, base_value = self._contributions(features)
        return ForecastContributions(
            features=self.features,
            values=features,
            contributions=contributions,
            base_value=base_value,
            link=self.link,
            closed=bool(closed_days(dates[-1:], self.holiday_region, self.closures)[0]),
            # What the daily forecast serves, through the very same path.
            forecast=self.predict(panel, start, horizon=step + 1).values[:, step],
        )

    def _state_metadata(self) -> dict[str, Any]:
        return {"encodings": self.encodings.to_dict()}

    def _state_blobs(self) -> dict[str, bytes]:
        return {BOOSTER_FILE: bytes(self.booster.save_raw("ubj"))}

    def _load_state(self, *, metadata: dict[str, Any], blobs: dict[str, bytes]) -> None:
        self.encodings = CategoryEncodings.from_dict(metadata["encodings"])
        self.booster = xgb.Booster()
        self.booster.load_model(bytearray(blobs[BOOSTER_FILE]))
        self.booster.set_param({"nthread": usable_cores()})
