"""Vectorised model features for every series at once, computed from strictly earlier days.

Rows are series-major: for days [first_day, last_day) the row of (series s, day d) is
`s * (last_day - first_day) + (d - first_day)`. The only inputs read on the target day itself are
known ahead: its promotion flag, as the promotion calendar planned it (`Panel.as_seen_at`; none
without a calendar), and its calendar, holidays of the tenant's country included.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forecasting.known_inputs import HolidayRegion, holiday_features
from forecasting.panel import Panel

LAGS = (1, 7, 14, 28)
ROLLING_WINDOWS = (7, 28)
# Days of history a feature row needs: the longest lag or rolling window.
LOOKBACK_DAYS = max(max(LAGS), max(ROLLING_WINDOWS))

FEATURE_NAMES: tuple[str, ...] = (
    *(f"lag_{lag}" for lag in LAGS),
    *(f"rolling_mean_{window}" for window in ROLLING_WINDOWS),
    *(f"rolling_std_{window}" for window in ROLLING_WINDOWS),
    "day_of_week",
    "day_of_month",
    "month",
    "week_of_year",
    "on_promotion",
    "department_code",
    "store_code",
    "is_holiday",
    "days_to_holiday",
    "days_from_holiday",
)
# The holiday features come last, so that a model without them reads a prefix of every feature
# matrix (a view, not a copy).
HOLIDAY_FEATURES: tuple[str, ...] = FEATURE_NAMES[-3:]


def model_features(holiday_region: HolidayRegion | None) -> tuple[str, ...]:
    """The features a model of a panel trains on: every one, less the holiday features when the
    panel has no holiday region. There they are constants, which no tree can split on, and
    which still cost XGBoost about 7% of its training time and 15% of its binning."""
    if holiday_region is None:
        return FEATURE_NAMES[: -len(HOLIDAY_FEATURES)]
    return FEATURE_NAMES


@dataclass(frozen=True)
class CategoryEncodings:
    """Integer codes of departments and stores, fixed when a model is fitted (unknown -> NaN)."""

    departments: tuple[str, ...]
    stores: tuple[str, ...]

    @classmethod
    def fit(cls, *, panel: Panel) -> CategoryEncodings:
        """Codes in sorted order of the panel's departments and stores."""
        return cls(
            departments=tuple(sorted({str(name) for name in panel.departments})),
            stores=tuple(sorted({str(name) for name in panel.stores})),
        )

    def department_codes(self, departments: np.ndarray) -> np.ndarray:
        return _codes(self.departments, departments)

    def store_codes(self, stores: np.ndarray) -> np.ndarray:
        return _codes(self.stores, stores)

    def to_dict(self) -> dict[str, list[str]]:
        return {"departments": list(self.departments), "stores": list(self.stores)}

    @classmethod
    def from_dict(cls, data: dict[str, list[str]]) -> CategoryEncodings:
        return cls(departments=tuple(data["departments"]), stores=tuple(data["stores"]))


def _codes(labels: tuple[str, ...], values: np.ndarray) -> np.ndarray:
    positions = pd.Index(labels).get_indexer(pd.Index(np.asarray(values, dtype=object)))
    return np.where(positions >= 0, positions, np.nan).astype(np.float32)


@dataclass(frozen=True)
class HistoryStatistics:
    """Running sums over days (column t holds the sum over days < t), for O(1) rolling stats."""

    total: np.ndarray
    total_of_squares: np.ndarray
    known_count: np.ndarray

    @classmethod
    def of(cls, quantity: np.ndarray) -> HistoryStatistics:
        known = ~np.isnan(quantity)
        # float64: running sums of squares over two years lose precision in float32.
        values = np.where(known, quantity, 0).astype(np.float64)
        n_series = quantity.shape[0]
        total = np.zeros((n_series, quantity.shape[1] + 1))
        total_of_squares = np.zeros_like(total)
        known_count = np.zeros((n_series, quantity.shape[1] + 1), dtype=np.int32)
        np.cumsum(values, axis=1, out=total[:, 1:])
        np.cumsum(values * values, axis=1, out=total_of_squares[:, 1:])
        np.cumsum(known, axis=1, out=known_count[:, 1:])
        return cls(total=total, total_of_squares=total_of_squares, known_count=known_count)

    def rolling(
        self, *, window: int, first_day: int, last_day: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and sample standard deviation over the `window` days before each day in
        [first_day, last_day), from the known values only (NaN when too few are known)."""
        length = last_day - first_day

        def over_window(running: np.ndarray) -> np.ndarray:
            return running[:, first_day:last_day] - _clamped_columns(
                running, start=first_day - window, length=length
            )

        count = over_window(self.known_count).astype(np.float64)
        total = over_window(self.total)
        squares = over_window(self.total_of_squares)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, total / count, np.nan)
            variance = np.where(
                count > 1, (squares - total * total / np.maximum(count, 1)) / (count - 1), np.nan
            )
        return mean, np.sqrt(np.maximum(variance, 0.0))


def _clamped_columns(values: np.ndarray, *, start: int, length: int) -> np.ndarray:
    """values[:, start:start + length] with columns before 0 read as column 0 (slices, not a
    gather, because this runs over millions of cells)."""
    if start >= 0:
        return values[:, start : start + length]
    before = min(-start, length)
    return np.concatenate(
        [np.repeat(values[:, :1], before, axis=1), values[:, : max(start + length, 0)]], axis=1
    )


@dataclass(frozen=True)
class FeatureColumns:
    """The features of target days [first_day, last_day) of some series, each held once at the
    grain it varies at: per (series, day) [n_series, n_days], per day [n_days] (the calendar)
    or per series [n_series] (the codes). Lags are views of the quantities, not copies.
    `rows` lays them out as the feature matrix."""

    n_series: int
    n_days: int
    cells: dict[str, np.ndarray]
    days: dict[str, np.ndarray]
    series: dict[str, np.ndarray]

    def rows(
        self,
        *,
        series: slice = slice(None),
        days: slice = slice(None),
        keep_rows: np.ndarray | None = None,
    ) -> np.ndarray:
        """Feature matrix [rows, len(FEATURE_NAMES)] (float32, column-major, series-major
        rows) of `series` x `days`; only the rows where the flat boolean `keep_rows` is True
        when it is given.

        Column-major: each feature is one contiguous column, filled by one vectorised copy,
        and XGBoost bins contiguous columns faster than rows."""
        n_series = len(range(*series.indices(self.n_series)))
        n_days = len(range(*days.indices(self.n_days)))
        n_rows = n_series * n_days if keep_rows is None else int(keep_rows.sum())
        features = np.empty((n_rows, len(FEATURE_NAMES)), np.float32, order="F")
        for column, name in enumerate(FEATURE_NAMES):
            if name in self.cells:
                values = self.cells[name][series, days]
            elif name in self.days:
                values = np.broadcast_to(self.days[name][days], (n_series, n_days))
            else:
                values = np.broadcast_to(self.series[name][series, None], (n_series, n_days))
            if keep_rows is None:
                features[:, column].reshape(n_series, n_days)[...] = values
            else:
                features[:, column] = values.reshape(-1)[keep_rows]
        return features


def feature_columns(
    *,
    quantity: np.ndarray,
    on_promotion: np.ndarray,
    dates: pd.DatetimeIndex,
    department_codes: np.ndarray,
    store_codes: np.ndarray,
    first_day: int,
    last_day: int,
    holiday_region: HolidayRegion | None = None,
) -> FeatureColumns:
    """The features of the target days [first_day, last_day) of the given [series, day]
    arrays, at their grains (see `FeatureColumns`)."""
    n_target_days = max(last_day - first_day, 0)
    cells: dict[str, np.ndarray] = {
        f"lag_{lag}": _shifted(quantity, first_day - lag, n_target_days) for lag in LAGS
    }
    if n_target_days:
        statistics = HistoryStatistics.of(quantity[:, :last_day])
        for window in ROLLING_WINDOWS:
            mean, deviation = statistics.rolling(
                window=window, first_day=first_day, last_day=last_day
            )
            cells[f"rolling_mean_{window}"] = mean.astype(np.float32)
            cells[f"rolling_std_{window}"] = deviation.astype(np.float32)
            del mean, deviation
    else:
        for window in ROLLING_WINDOWS:
            empty = np.zeros((quantity.shape[0], 0), dtype=np.float32)
            cells[f"rolling_mean_{window}"] = cells[f"rolling_std_{window}"] = empty
    cells["on_promotion"] = on_promotion[:, first_day:last_day]
    target_dates = dates[first_day:last_day]
    is_holiday, days_to_holiday, days_from_holiday = holiday_features(target_dates, holiday_region)
    days = {
        "day_of_week": target_dates.day_of_week,
        "day_of_month": target_dates.day,
        "month": target_dates.month,
        "week_of_year": iso_week(target_dates),
        "is_holiday": is_holiday,
        "days_to_holiday": days_to_holiday,
        "days_from_holiday": days_from_holiday,
    }
    return FeatureColumns(
        n_series=quantity.shape[0],
        n_days=n_target_days,
        cells=cells,
        days={name: np.asarray(values, dtype=np.float32) for name, values in days.items()},
        series={
            "department_code": np.asarray(department_codes, dtype=np.float32),
            "store_code": np.asarray(store_codes, dtype=np.float32),
        },
    )


def build_features(*, keep_rows: np.ndarray | None = None, **arrays: Any) -> np.ndarray:
    """Feature matrix [n_series * n_target_days, len(FEATURE_NAMES)] (float32, series-major
    rows, column-major) of `feature_columns(**arrays)` (the target days [first_day, last_day)
    of the given [series, day] arrays); only the rows where the flat boolean `keep_rows` is
    True when it is given."""
    if arrays["last_day"] - arrays["first_day"] <= 0:
        return np.zeros((0, len(FEATURE_NAMES)), dtype=np.float32)
    return feature_columns(**arrays).rows(keep_rows=keep_rows)


def iso_week(dates: pd.DatetimeIndex) -> np.ndarray:
    """ISO 8601 week numbers of `dates`: the week of the year its Thursday falls in. Computed on
    day numbers because `DatetimeIndex.isocalendar` costs milliseconds a call, and a recursive
    forecast asks for one target day at a time."""
    days = dates.to_numpy().astype("datetime64[D]")
    # 1970-01-01 was a Thursday: (day + 3) % 7 is the weekday with Monday as 0.
    thursday = days - (days.astype(np.int64) + 3) % 7 + 3
    year_start = thursday.astype("datetime64[Y]").astype("datetime64[D]")
    return (thursday - year_start).astype(np.int64) // 7 + 1


def _shifted(values: np.ndarray, start: int, length: int) -> np.ndarray:
    """values[:, start:start + length], NaN where start reaches before day 0."""
    if start >= 0:
        return values[:, start : start + length]
    padded = np.full((values.shape[0], length), np.nan, dtype=values.dtype)
    padded[:, -start:] = values[:, : max(start + length, 0)]
    return padded


def panel_features(
    *,
    panel: Panel,
    encodings: CategoryEncodings,
    first_day: int = 0,
    last_day: int | None = None,
    keep_rows: np.ndarray | None = None,
) -> np.ndarray:
    """`build_features` for days [first_day, last_day) of a panel (default: all its days)."""
    return build_features(
        **_panel_arrays(panel, encodings),
        first_day=first_day,
        last_day=panel.n_days if last_day is None else last_day,
        keep_rows=keep_rows,
    )


def _panel_arrays(panel: Panel, encodings: CategoryEncodings) -> dict:
    return {
        "quantity": panel.quantity,
        "on_promotion": panel.on_promotion,
        "dates": panel.dates,
        "department_codes": encodings.department_codes(panel.departments),
        "store_codes": encodings.store_codes(panel.stores),
        "holiday_region": panel.holiday_region,
    }


def training_rows(
    *, panel: Panel, encodings: CategoryEncodings, first_day: int = LOOKBACK_DAYS
) -> tuple[np.ndarray, np.ndarray]:
    """Features (column-major) and targets of every (series, day) from `first_day` on whose
    actual is known."""
    first_day = min(first_day, max(panel.n_days - 1, 0))
    target = panel.quantity[:, first_day:].reshape(-1)
    known = ~np.isnan(target)
    keep_rows = None if known.all() else known
    features = panel_features(
        panel=panel, encodings=encodings, first_day=first_day, keep_rows=keep_rows
    )
    return features, target if keep_rows is None else target[keep_rows]


class PanelTrainingRows:
    """The training rows of every day of one panel, built once, sliced for runs of its days.

    A feature row reads only the days before its target day (and the day's planned promotion),
    so for a run of the panel's days the rows that `training_rows` builds from the run alone
    are the panel's rows of those days (its first LOOKBACK_DAYS days only feed lags). A
    walk-forward fits on such a run at every cutoff: it builds the features once and lays
    each cutoff's rows out of them.
    """

    def __init__(self, *, panel: Panel, encodings: CategoryEncodings) -> None:
        self.panel = panel
        self.encodings = encodings
        # Each feature at its grain (`FeatureColumns`): about a quarter of the float32 matrix.
        self._columns = feature_columns(
            **_panel_arrays(panel, encodings), first_day=LOOKBACK_DAYS, last_day=panel.n_days
        )

    def of(self, *, first_day: int, n_days: int) -> tuple[np.ndarray, np.ndarray]:
        """`training_rows` of the panel's days [first_day, first_day + n_days), which must
        hold more than LOOKBACK_DAYS days: features (column-major) and known targets."""
        return self._rows_of(slice(0, self.panel.n_series), first_day=first_day, n_days=n_days)

    def batches(
        self, *, first_day: int, n_days: int, rows_per_batch: int = 262_144
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """`of`, a block of series at a time (about `rows_per_batch` rows each), in the same
        row order: a training matrix built from the batches needs no copy of the whole run."""
        self._check_run(first_day=first_day, n_days=n_days)
        series_per_batch = max(rows_per_batch // (n_days - LOOKBACK_DAYS), 1)
        for start in range(0, self.panel.n_series, series_per_batch):
            series = slice(start, min(start + series_per_batch, self.panel.n_series))
            yield self._rows_of(series, first_day=first_day, n_days=n_days)

    def _check_run(self, *, first_day: int, n_days: int) -> None:
        if n_days <= LOOKBACK_DAYS or first_day < 0 or first_day + n_days > self.panel.n_days:
            raise ValueError("the run must lie within the panel and be longer than its lookback")

    def _rows_of(
        self, series: slice, *, first_day: int, n_days: int
    ) -> tuple[np.ndarray, np.ndarray]:
        self._check_run(first_day=first_day, n_days=n_days)
        # Column day 0 is panel day LOOKBACK_DAYS.
        days = slice(first_day, first_day + n_days - LOOKBACK_DAYS)
        target = self.panel.quantity[series, first_day + LOOKBACK_DAYS : first_day + n_days]
        target = target.reshape(-1)
        known = ~np.isnan(target)
        keep_rows = None if known.all() else known
        features = self._columns.rows(series=series, days=days, keep_rows=keep_rows)
        return features, target if keep_rows is None else target[keep_rows]
