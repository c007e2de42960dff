"""Dense daily sales panel (series x days) that features, models, metrics and backtests share."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = ("date", "store", "product", "department", "quantity", "on_promotion")
# Per-cell arrays a panel may carry beside quantity and on_promotion.
_OPTIONAL_CELLS = ("price", "censored", "promotion_known_from")

DateLike = dt.date | str | pd.Timestamp | np.datetime64


def to_timestamp(day: DateLike) -> pd.Timestamp:
    """The day as a normalised (midnight, tz-naive) pandas Timestamp."""
    return pd.Timestamp(day).normalize()


@dataclass(frozen=True, eq=False)
class Panel:
    """Daily sales of many series on consecutive days, one row per (store, product) series.

    `quantity` is NaN where the actual is unknown (the store sent nothing that day) and where
    demand was censored (`censored`: a zero sale while out of stock); a series absent on a day
    its store reported is a real zero.

    `on_promotion` is what a model reads as the day's promotion flag. With a promotion calendar
    (`promotion_known_from`: per cell, the day number (days since 1970) from which a planned
    promotion on it was known; NaN where none was planned) it is the calendar's flag as known
    at the start of that day; `as_seen_at(cutoff)` gives the flags of the days from a cutoff
    as known at the cutoff. Without one it holds the sales' own flags.
    """

    stores: np.ndarray
    products: np.ndarray
    departments: np.ndarray
    dates: pd.DatetimeIndex
    quantity: np.ndarray
    on_promotion: np.ndarray
    price: np.ndarray | None = None
    censored: np.ndarray | None = None
    promotion_known_from: np.ndarray | None = None
    # Where the stores are, for holiday features (a forecasting.known_inputs.HolidayRegion).
    holiday_region: Any = None

    def __post_init__(self) -> None:
        n_series, n_days = len(self.stores), len(self.dates)
        for name in ("quantity", "on_promotion", *_OPTIONAL_CELLS):
            values = getattr(self, name)
            if values is None:
                continue
            if values.shape != (n_series, n_days):
                raise ValueError(f"{name} has shape {values.shape}, expected {(n_series, n_days)}")
        if len(self.products) != n_series or len(self.departments) != n_series:
            raise ValueError("stores, products and departments must have one entry per series")
        day_numbers = self.dates.values.astype("datetime64[D]").astype(np.int64)
        if n_days > 1 and not (np.diff(day_numbers) == 1).all():
            raise ValueError("dates must be consecutive days")

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Panel:
        """Build a panel from a long frame (date, store, product, department, quantity,
        on_promotion[, price]); raises ValueError on missing columns or duplicate rows."""
        missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
        if missing:
            raise ValueError(f"sales frame lacks columns: {', '.join(missing)}")
        if frame.empty:
            return cls.empty()

        day_numbers = _day_numbers(frame["date"])
        first_day = int(day_numbers.min())
        day_index = (day_numbers - first_day).astype(np.int64)
        n_days = int(day_index.max()) + 1
        dates = pd.date_range(
            pd.Timestamp(first_day, unit="D"), periods=n_days, freq="D", name="date"
        )

        store_codes, store_labels = _factorize_labels(frame["store"])
        product_codes, product_labels = _factorize_labels(frame["product"])
        # A series is a (store, product) pair; encode the pair as one integer, then compact it.
        pair_codes = store_codes.astype(np.int64) * len(product_labels) + product_codes
        # pandas' hash factorize: numpy's unique is several times slower on millions of rows.
        series_index, unique_pairs = pd.factorize(pair_codes, sort=True)
        n_series = len(unique_pairs)

        flat_cell = series_index * n_days + day_index
        if np.bincount(flat_cell, minlength=n_series * n_days).max() > 1:
            raise ValueError("sales frame has more than one row for a (store, product, date)")

        series_store_code = unique_pairs // len(product_labels)
        series_product_code = unique_pairs % len(product_labels)
        # Department of a series: the one on its rows (if they disagree, the last row's).
        department_codes, department_labels = _factorize_labels(frame["department"])
        series_department_code = np.empty(n_series, dtype=np.int64)
        series_department_code[series_index] = department_codes

        # Absent cells are zero sales where the store reported that day, unknown otherwise.
        store_reported = np.zeros((len(store_labels), n_days), dtype=bool)
        store_reported[store_codes, day_index] = True
        quantity = np.where(store_reported[series_store_code], np.float32(0), np.float32(np.nan))
        quantity = quantity.astype(np.float32, copy=False)
        quantity.reshape(-1)[flat_cell] = frame["quantity"].to_numpy(dtype=np.float32)

        on_promotion = np.zeros((n_series, n_days), dtype=np.float32)
        on_promotion.reshape(-1)[flat_cell] = frame["on_promotion"].to_numpy(dtype=np.float32)

        price = None
        if "price" in frame.columns:
            price = np.full((n_series, n_days), np.nan, dtype=np.float32)
            price.reshape(-1)[flat_cell] = pd.to_numeric(frame["price"]).to_numpy(np.float32)

        censored = None
        if "in_stock" in frame.columns:
            censored = np.zeros((n_series, n_days), dtype=bool)
            censored.reshape(-1)[flat_cell] = (frame["quantity"].to_numpy() == 0) & ~frame[
                "in_stock"
            ].to_numpy(dtype=bool)
            quantity[censored] = np.nan

        return cls(
            stores=store_labels[series_store_code],
            products=product_labels[series_product_code],
            departments=department_labels[series_department_code],
            dates=dates,
            quantity=quantity,
            on_promotion=on_promotion,
            price=price,
            censored=censored,
        )

    @classmethod
    def empty(cls) -> Panel:
        """A panel with no series and no days."""
        return cls(
            stores=np.array([], dtype=object),
            products=np.array([], dtype=object),
            departments=np.array([], dtype=object),
            dates=pd.DatetimeIndex([], name="date"),
            quantity=np.zeros((0, 0), dtype=np.float32),
            on_promotion=np.zeros((0, 0), dtype=np.float32),
        )

    def to_frame(self, *, include_unknown: bool = False) -> pd.DataFrame:
        """The long frame (one row per series and day); unknown (NaN) cells are left out unless
        `include_unknown`."""
        n_series, n_days = self.quantity.shape
        series_index = np.repeat(np.arange(n_series), n_days)
        day_index = np.tile(np.arange(n_days), n_series)
        flat_quantity = self.quantity.reshape(-1)
        keep = slice(None) if include_unknown else ~np.isnan(flat_quantity)
        columns = {
            "date": self.dates.values[day_index][keep],
            "store": self.stores[series_index][keep],
            "product": self.products[series_index][keep],
            "department": self.departments[series_index][keep],
            "quantity": flat_quantity[keep],
            "on_promotion": self.on_promotion.reshape(-1)[keep] > 0,
        }
        if self.price is not None:
            columns["price"] = self.price.reshape(-1)[keep]
        return pd.DataFrame(columns)

    # -- shape and slicing --------------------------------------------------------------------

    @property
    def n_series(self) -> int:
        return len(self.stores)

    @property
    def n_days(self) -> int:
        return len(self.dates)

    @property
    def first_day(self) -> pd.Timestamp | None:
        return self.dates[0] if self.n_days else None

    @property
    def last_day(self) -> pd.Timestamp | None:
        return self.dates[-1] if self.n_days else None

    def day_position(self, day: DateLike) -> int:
        """Column index of `day`; may be < 0 or >= n_days for days outside the panel."""
        if not self.n_days:
            raise ValueError("the panel has no days")
        return int((to_timestamp(day) - self.dates[0]).days)

    def until(self, day: DateLike) -> Panel:
        """The panel restricted to days strictly before `day`."""
        end = min(max(self.day_position(day), 0), self.n_days) if self.n_days else 0
        return self._columns(slice(0, end))

    def window(self, start: DateLike, end: DateLike) -> Panel:
        """The panel restricted to days from `start` to `end`, both included."""
        if not self.n_days:
            return self
        first = min(max(self.day_position(start), 0), self.n_days)
        last = min(max(self.day_position(end) + 1, first), self.n_days)
        return self._columns(slice(first, last))

    def select(self, rows: np.ndarray | slice | list) -> Panel:
        """The panel restricted to some series, by boolean mask or integer index."""
        rows = np.asarray(rows) if not isinstance(rows, slice) else rows
        return Panel(
            stores=self.stores[rows],
            products=self.products[rows],
            departments=self.departments[rows],
            dates=self.dates,
            quantity=self.quantity[rows],
            on_promotion=self.on_promotion[rows],
            holiday_region=self.holiday_region,
            **{
                name: None if getattr(self, name) is None else getattr(self, name)[rows]
                for name in _OPTIONAL_CELLS
            },
        )

    def series_keys(self) -> pd.MultiIndex:
        """(store, product) of each series, in row order."""
        return pd.MultiIndex.from_arrays([self.stores, self.products], names=["store", "product"])

    def series_positions(self, *, stores: np.ndarray, products: np.ndarray) -> np.ndarray:
        """Row index of each (store, product) pair, -1 where the panel lacks it."""
        keys = self.series_keys()
        wanted = pd.MultiIndex.from_arrays(
            [np.asarray(stores, dtype=object), np.asarray(products, dtype=object)]
        )
        return keys.get_indexer(wanted)

    def with_quantity(self, quantity: np.ndarray) -> Panel:
        """The same panel with other quantities (e.g. forecasts written into future days)."""
        return replace(self, quantity=quantity)

    def day_numbers(self) -> np.ndarray:
        """Days since 1970-01-01 of the panel's days."""
        return self.dates.values.astype("datetime64[D]").astype(np.int64)

    def with_promotion_calendar(self, known_from: np.ndarray) -> Panel:
        """The panel with a promotion calendar (see the class docstring): every day's flag
        becomes the calendar's as known at the start of that day."""
        known_from = np.asarray(known_from, dtype=np.float32)
        with np.errstate(invalid="ignore"):
            on_promotion = (known_from <= self.day_numbers()[None, :]).astype(np.float32)
        return replace(self, on_promotion=on_promotion, promotion_known_from=known_from)

    def as_seen_at(self, cutoff: DateLike) -> Panel:
        """The panel as a forecast made at the start of `cutoff` sees it: the promotion flags
        of the days from the cutoff on are the calendar's plans known by then (none without a
        calendar); earlier days are unchanged."""
        if self.promotion_known_from is None:
            return self.without_promotions_from(cutoff)
        if not self.n_days:
            return self
        first = min(max(self.day_position(cutoff), 0), self.n_days)
        on_promotion = self.on_promotion.copy()
        cutoff_day = self.day_numbers()[0] + self.day_position(cutoff)
        with np.errstate(invalid="ignore"):
            on_promotion[:, first:] = self.promotion_known_from[:, first:] <= cutoff_day
        return replace(self, on_promotion=on_promotion)

    def with_future_days(self, days: int) -> Panel:
        """The panel extended by `days` days of unknown sales (for calendars of target days)."""
        if days <= 0 or not self.n_days:
            return self
        dates = pd.date_range(self.dates[0], periods=self.n_days + days, freq="D", name="date")

        def grown(values: np.ndarray | None, fill) -> np.ndarray | None:
            if values is None:
                return None
            extra = np.full((values.shape[0], days), fill, dtype=values.dtype)
            return np.concatenate([values, extra], axis=1)

        return Panel(
            stores=self.stores,
            products=self.products,
            departments=self.departments,
            dates=dates,
            quantity=grown(self.quantity, np.nan),
            on_promotion=grown(self.on_promotion, 0),
            price=grown(self.price, np.nan),
            censored=grown(self.censored, False),
            promotion_known_from=grown(self.promotion_known_from, np.nan),
            holiday_region=self.holiday_region,
        )

    def without_promotions_from(self, day: DateLike) -> Panel:
        """The same panel with no promotion flagged on or after `day` (forecasts made on that
        day without a promotion calendar cannot know them)."""
        on_promotion = self.on_promotion.copy()
        if self.n_days:
            on_promotion[:, min(max(self.day_position(day), 0), self.n_days) :] = 0
        return replace(self, on_promotion=on_promotion)

    def _columns(self, days: slice) -> Panel:
        return Panel(
            stores=self.stores,
            products=self.products,
            departments=self.departments,
            dates=self.dates[days],
            quantity=self.quantity[:, days],
            on_promotion=self.on_promotion[:, days],
            holiday_region=self.holiday_region,
            **{
                name: None if getattr(self, name) is None else getattr(self, name)[:, days]
                for name in _OPTIONAL_CELLS
            },
        )


def _day_numbers(dates: pd.Series) -> np.ndarray:
    """Days since the epoch of each value (dates, timestamps or ISO strings)."""
    values = pd.to_datetime(dates)
    return values.to_numpy(dtype="datetime64[D]").astype(np.int64)


def _factorize_labels(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of the values and their labels as strings (categoricals stay cheap)."""
    codes, uniques = pd.factorize(values, sort=True)
    if (codes < 0).any():
        raise ValueError(f"column {values.name!r} has empty values")
    labels = np.asarray(pd.Index(uniques).astype(str), dtype=object)
    return codes.astype(np.int64), labels
