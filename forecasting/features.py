"""Vectorised model features for every series at once, computed from strictly earlier days.

Rows are series-major: for days [first_day, last_day) the row of (series s, day d) is
`s * (last_day - first_day) + (d - first_day)`. The only inputs read on the target day itself are
known ahead: its promotion flag, as the promotion calendar planned it (`Panel.as_seen_at`; none
without a calendar), and its calendar, holidays of the tenant's country included.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def build_features(
    *,
    quantity: np.ndarray,
    on_promotion: np.ndarray,
    dates: pd.DatetimeIndex,
    department_codes: np.ndarray,
    store_codes: np.ndarray,
    first_day: int,
    last_day: int,
    keep_rows: np.ndarray | None = None,
    holiday_region: HolidayRegion | None = None,
) -> np.ndarray:
    """Feature matrix [n_series * n_target_days, len(FEATURE_NAMES)] (float32, series-major
    rows) for the target days [first_day, last_day) of the given [series, day] arrays; only
    the rows where the flat boolean `keep_rows` is True when it is given.

    The matrix is column-major (Fortran order): each feature is one contiguous column, filled
    by one vectorised copy, and XGBoost bins contiguous columns faster than rows.
    """
    n_series = quantity.shape[0]
    n_target_days = last_day - first_day
    if n_target_days <= 0:
        return np.zeros((0, len(FEATURE_NAMES)), dtype=np.float32)
    statistics = HistoryStatistics.of(quantity[:, :last_day])
    n_rows = n_series * n_target_days if keep_rows is None else int(keep_rows.sum())
    features = np.empty((n_rows, len(FEATURE_NAMES)), np.float32, order="F")

    def put(column: int, values: np.ndarray) -> None:
        flat = values.reshape(-1)
        features[:, column] = flat if keep_rows is None else flat[keep_rows]

    column = 0
    for lag in LAGS:
        put(column, _shifted(quantity, first_day - lag, n_target_days))
        column += 1
    rolling = [
        statistics.rolling(window=window, first_day=first_day, last_day=last_day)
        for window in ROLLING_WINDOWS
    ]
    for mean, _ in rolling:
        put(column, mean)
        column += 1
    for _, standard_deviation in rolling:
        put(column, standard_deviation)
        column += 1
    target_dates = dates[first_day:last_day]
    calendar = (
        target_dates.day_of_week,
        target_dates.day,
        target_dates.month,
        iso_week(target_dates),
    )
    for values in calendar:
        put(column, np.tile(np.asarray(values, dtype=np.float32), n_series))
        column += 1
    put(column, on_promotion[:, first_day:last_day])
    put(column + 1, np.repeat(department_codes, n_target_days))
    put(column + 2, np.repeat(store_codes, n_target_days))
    for offset, values in enumerate(holiday_features(target_dates, holiday_region), start=3):
        put(column + offset, np.tile(values, n_series))
    return features


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
        quantity=panel.quantity,
        on_promotion=panel.on_promotion,
        dates=panel.dates,
        department_codes=encodings.department_codes(panel.departments),
        store_codes=encodings.store_codes(panel.stores),
        first_day=first_day,
        last_day=panel.n_days if last_day is None else last_day,
        keep_rows=keep_rows,
        holiday_region=panel.holiday_region,
    )


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
    walk-forward fits on such a run at every cutoff: it builds the features once and copies
    each cutoff's rows out of them.
    """

    def __init__(self, *, panel: Panel, encodings: CategoryEncodings) -> None:
        self.panel = panel
        self.encodings = encodings
        self._features = panel_features(panel=panel, encodings=encodings, first_day=LOOKBACK_DAYS)

    def of(self, *, first_day: int, n_days: int) -> tuple[np.ndarray, np.ndarray]:
        """`training_rows` of the panel's days [first_day, first_day + n_days), which must
        hold more than LOOKBACK_DAYS days: features (column-major) and known targets."""
        if n_days <= LOOKBACK_DAYS or first_day < 0 or first_day + n_days > self.panel.n_days:
            raise ValueError("the run must lie within the panel and be longer than its lookback")
        n_series = self.panel.n_series
        row_days = self.panel.n_days - LOOKBACK_DAYS
        # Feature rows are series-major: series s, panel day d is row s * row_days + d - LOOKBACK.
        days = slice(first_day, first_day + n_days - LOOKBACK_DAYS)
        target = self.panel.quantity[:, first_day + LOOKBACK_DAYS : first_day + n_days]
        known = ~np.isnan(target.reshape(-1))
        keep_rows = None if known.all() else known
        n_rows = target.size if keep_rows is None else int(known.sum())
        features = np.empty((n_rows, len(FEATURE_NAMES)), np.float32, order="F")
        for column in range(len(FEATURE_NAMES)):
            rows = self._features[:, column].reshape(n_series, row_days)[:, days]
            if keep_rows is None:
                features[:, column].reshape(target.shape)[...] = rows
            else:
                features[:, column] = rows.reshape(-1)[keep_rows]
        target = target.reshape(-1)
        return features, target if keep_rows is None else target[keep_rows]
