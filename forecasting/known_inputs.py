"""Inputs known ahead of the days they describe: the retailer's promotion calendar laid onto a
panel's cells (point-in-time), holidays of the tenant's country, and the days its stores close.

A calendar row covers some series (one store or all, one product or a department) over a run of
days, and is usable from a day on: the first day at whose start it was known. On each cell the
earliest such day of the rows covering it is kept, so `Panel.as_seen_at` can tell, for any
cutoff, which target days a forecast made then knew to be on promotion.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import holidays
import numpy as np
import pandas as pd

from forecasting.panel import Panel

CALENDAR_COLUMNS = ("store", "product", "department", "start_day", "end_day", "usable_from")
_EPOCH = pd.Timestamp("1970-01-01")


def calendar_rows(plans: pd.DataFrame) -> pd.DataFrame:
    """Planned promotions as the import takes them (store, product, department, start_date,
    end_date, known_since; store None or `*` for every store, product None for a department)
    as CALENDAR_COLUMNS. A plan known at 00:00 UTC of a day is usable from that day on; known
    later in a day, from the next one."""
    if plans.empty:
        return pd.DataFrame(columns=list(CALENDAR_COLUMNS))

    def optional(column: str) -> np.ndarray:
        if column not in plans:
            return np.full(len(plans), None, dtype=object)
        values = plans[column].astype(object).to_numpy()
        blank = pd.isna(values) | np.isin(values.astype(str), ["", "*"])
        return np.where(blank, None, values.astype(str)).astype(object)

    known_since = pd.to_datetime(plans["known_since"], utc=True).dt.tz_localize(None)
    return pd.DataFrame(
        {
            "store": optional("store"),
            "product": optional("product"),
            "department": optional("department"),
            "start_day": (pd.to_datetime(plans["start_date"]) - _EPOCH).dt.days.to_numpy(),
            "end_day": (pd.to_datetime(plans["end_date"]) - _EPOCH).dt.days.to_numpy(),
            "usable_from": np.ceil((known_since - _EPOCH) / pd.Timedelta(days=1)).to_numpy(),
        }
    )


def promotion_known_from(*, panel: Panel, rows: pd.DataFrame) -> np.ndarray:
    """[series, day] float32: the day number from which a planned promotion on the cell was
    known (the earliest over the rows covering it), NaN where no row covers it.

    `rows` has CALENDAR_COLUMNS: store code (None: every store), product SKU (None: every
    product of `department`), first and last day and usable-from day as days since 1970.
    """
    known_from = np.full((panel.n_series, panel.n_days), np.inf)
    if rows.empty or not panel.n_days:
        return np.where(np.isinf(known_from), np.nan, known_from).astype(np.float32)
    first_day = int(panel.day_numbers()[0])
    rows = rows.reset_index(drop=True)
    store = rows["store"].to_numpy(dtype=object)
    product = rows["product"].to_numpy(dtype=object)

    # Rows of one store and one product (nearly all): one series each, found by index.
    exact = np.array([s is not None and p is not None for s, p in zip(store, product, strict=True)])
    series = np.full(len(rows), -1, dtype=np.int64)
    if exact.any():
        series[exact] = panel.series_positions(stores=store[exact], products=product[exact])
    series_rows = [(int(index), np.array([series[index]])) for index in np.flatnonzero(exact)]
    # Rows of every store or a department: a mask over the series.
    for index in np.flatnonzero(~exact):
        mask = np.ones(panel.n_series, dtype=bool)
        if store[index] is not None:
            mask &= panel.stores == store[index]
        if product[index] is not None:
            mask &= panel.products == product[index]
        else:
            mask &= panel.departments == rows.at[index, "department"]
        series_rows.append((int(index), np.flatnonzero(mask)))

    start = rows["start_day"].to_numpy(np.int64) - first_day
    end = rows["end_day"].to_numpy(np.int64) - first_day
    usable = rows["usable_from"].to_numpy(np.float64)
    for index, rows_series in series_rows:
        rows_series = rows_series[rows_series >= 0]
        first, last = max(start[index], 0), min(end[index], panel.n_days - 1)
        if not rows_series.size or first > last:
            continue
        cells = known_from[rows_series, first : last + 1]
        np.minimum(cells, usable[index], out=cells)
        known_from[rows_series, first : last + 1] = cells
    return np.where(np.isinf(known_from), np.nan, known_from).astype(np.float32)


# -- holidays --------------------------------------------------------------------------------

# Days to or from the nearest holiday are capped: beyond a few weeks the distance says nothing.
MAX_HOLIDAY_DISTANCE = 30


@dataclass(frozen=True)
class HolidayRegion:
    """Where a tenant's stores are, for the `holidays` package: an ISO 3166 country code and an
    optional subdivision (e.g. GB and ENG, DE and BY)."""

    country: str
    subdivision: str = ""

    def names(self, dates: pd.DatetimeIndex) -> np.ndarray:
        """The holiday's name on each day, "" on other days."""
        if not len(dates):
            return np.array([], dtype=object)
        years = range(dates[0].year - 1, dates[-1].year + 2)
        calendar = _holiday_calendar(self.country, self.subdivision or None, tuple(years))
        return np.array([calendar.get(day.date(), "") for day in dates], dtype=object)

    def to_dict(self) -> dict[str, str]:
        return {"country": self.country, "subdivision": self.subdivision}

    @classmethod
    def from_dict(cls, data: dict[str, str] | None) -> HolidayRegion | None:
        return None if not data else cls(data["country"], data.get("subdivision", ""))


@functools.lru_cache(maxsize=64)
def _holiday_calendar(country: str, subdivision: str | None, years: tuple[int, ...]):
    return holidays.country_holidays(country, subdiv=subdivision, years=years)


def holiday_features(
    dates: pd.DatetimeIndex, region: HolidayRegion | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per day: holiday flag, days to the next holiday and days since the last one (0 on a
    holiday, capped at MAX_HOLIDAY_DISTANCE). Without a region no day is known as a holiday:
    flag 0, both distances at the cap.

    Constants rather than NaN: XGBoost's histogram kernels run about 1.5 times slower on a
    matrix with any missing cell, and a column without information is never split on either
    way."""
    n_days = len(dates)
    padding = pd.Timedelta(days=MAX_HOLIDAY_DISTANCE)
    around = pd.date_range(dates[0] - padding, dates[-1] + padding, freq="D") if n_days else []
    is_holiday = np.zeros(len(around), dtype=bool) if region is None else region.names(around) != ""
    positions = np.arange(len(around))
    holiday_positions = positions[is_holiday]
    inside = slice(MAX_HOLIDAY_DISTANCE, MAX_HOLIDAY_DISTANCE + n_days)
    if not holiday_positions.size:
        far = np.full(n_days, float(MAX_HOLIDAY_DISTANCE), dtype=np.float32)
        return np.zeros(n_days, dtype=np.float32), far, far.copy()
    after = np.searchsorted(holiday_positions, positions, side="left")
    next_holiday = holiday_positions[np.minimum(after, holiday_positions.size - 1)]
    days_to = np.where(after < holiday_positions.size, next_holiday - positions, np.inf)
    before = np.searchsorted(holiday_positions, positions, side="right") - 1
    last_holiday = holiday_positions[np.maximum(before, 0)]
    days_from = np.where(before >= 0, positions - last_holiday, np.inf)
    cap = float(MAX_HOLIDAY_DISTANCE)
    return (
        is_holiday[inside].astype(np.float32),
        np.minimum(days_to[inside], cap).astype(np.float32),
        np.minimum(days_from[inside], cap).astype(np.float32),
    )


def closure_keys(panel: Panel, region: HolidayRegion | None) -> tuple[str, ...]:
    """Days the stores close, known ahead: the holidays (without a region, the calendar days
    "MM-DD") on which, every time the panel holds them, every store reported and sold nothing.
    Such a day of the future is forecast as zero."""
    if not panel.n_days or not panel.n_series:
        return ()
    keys = _day_keys(panel.dates, region)
    known = ~np.isnan(panel.quantity)
    store_codes, stores = pd.factorize(pd.Index(panel.stores))
    reporting = np.zeros((len(stores), panel.n_days), dtype=bool)
    np.logical_or.at(reporting, store_codes, known)
    every_store = reporting.all(axis=0)
    closed = every_store & (np.where(known, panel.quantity, 0).sum(axis=0) == 0)
    found = []
    for key in sorted(set(keys[closed]) - {""}):
        occurrences = (keys == key) & every_store
        if closed[occurrences].all():
            found.append(str(key))
    return tuple(found)


def closed_days(dates: pd.DatetimeIndex, region: HolidayRegion | None, keys: tuple[str, ...]):
    """Which of `dates` are closures (see `closure_keys`)."""
    if not keys:
        return np.zeros(len(dates), dtype=bool)
    return np.isin(_day_keys(dates, region), list(keys))


def _day_keys(dates: pd.DatetimeIndex, region: HolidayRegion | None) -> np.ndarray:
    if region is not None:
        return region.names(dates)
    return np.asarray(dates.strftime("%m-%d"), dtype=object)
