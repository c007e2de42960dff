"""Deterministic, realistic synthetic daily retail sales for demos, tests and benchmarks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

DEFAULT_END_DATE = dt.date(2025, 12, 31)


@dataclass(frozen=True)
class DepartmentProfile:
    """How demand in one department behaves."""

    name: str
    share_of_products: float
    median_daily_units: float
    weekday_factors: tuple[float, float, float, float, float, float, float]  # Monday first
    yearly_amplitude: float
    yearly_peak_day_of_year: int
    promotion_lift: float
    weekend_promotion_lift: float  # extra lift when a promotion falls on Saturday or Sunday
    promotion_starts_per_day: float
    promotion_length_days: int
    price_range: tuple[float, float]
    slow_mover_share: float


# Electronics is deliberately unlike the others: demand is concentrated on weekends and jumps
# with promotions (more so on weekend promotions), so a model fitted to Electronics alone can
# beat a global model that averages it with Grocery's flat, high-volume pattern.
DEPARTMENTS = (
    DepartmentProfile(
        name="Grocery",
        share_of_products=0.5,
        median_daily_units=12.0,
        weekday_factors=(0.95, 0.92, 0.94, 1.0, 1.1, 1.22, 0.87),
        yearly_amplitude=0.06,
        yearly_peak_day_of_year=355,
        promotion_lift=1.35,
        weekend_promotion_lift=1.0,
        promotion_starts_per_day=1 / 30,
        promotion_length_days=7,
        price_range=(0.8, 12.0),
        slow_mover_share=0.1,
    ),
    DepartmentProfile(
        name="Apparel",
        share_of_products=0.3,
        median_daily_units=3.5,
        weekday_factors=(0.8, 0.8, 0.85, 0.9, 1.1, 1.45, 1.1),
        yearly_amplitude=0.35,
        yearly_peak_day_of_year=340,
        promotion_lift=1.6,
        weekend_promotion_lift=1.1,
        promotion_starts_per_day=1 / 45,
        promotion_length_days=10,
        price_range=(9.0, 90.0),
        slow_mover_share=0.25,
    ),
    DepartmentProfile(
        name="Electronics",
        share_of_products=0.2,
        median_daily_units=2.0,
        weekday_factors=(0.45, 0.45, 0.5, 0.6, 0.9, 2.4, 1.7),
        yearly_amplitude=0.3,
        yearly_peak_day_of_year=330,  # late November
        promotion_lift=2.8,
        weekend_promotion_lift=1.5,
        promotion_starts_per_day=1 / 35,
        promotion_length_days=3,
        price_range=(40.0, 900.0),
        slow_mover_share=0.35,
    ),
)

NOISE_SHAPE = 4.0  # gamma-Poisson (negative binomial) over-dispersion; lower = noisier
PROMOTION_DISCOUNT = 0.2


def generate_sales(
    *,
    stores: int,
    products: int,
    days: int,
    seed: int,
    end_date: dt.date | None = None,
    drift_date: dt.date | None = None,
    drift_fraction: float = 0.0,
    drift_size: float = 0.0,
    department_shares: tuple[float, ...] | None = None,
    noise_shape: float = NOISE_SHAPE,
) -> pd.DataFrame:
    """Daily sales of `stores` x `products` series over `days` days ending on `end_date`, one row
    per series and day (zeros included), the same for the same arguments.

    Columns: date, store, product, department, quantity (int), on_promotion (bool), price,
    store_name, product_name. From `drift_date` on, demand of a `drift_fraction` share of the
    series is multiplied by (1 + drift_size); `frame.attrs["drifted_series"]` lists them as
    (store, product) pairs. `department_shares` (one per DEPARTMENTS profile)
    replaces the profiles' shares of products, and `noise_shape` the demand's over-dispersion
    (lower is noisier): benchmarks vary them to see whether a recipe holds on other data.
    """
    if stores < 1 or products < 1 or days < 1:
        raise ValueError("stores, products and days must be positive")
    if not 0.0 <= drift_fraction <= 1.0:
        raise ValueError("drift_fraction must be between 0 and 1")
    rng = np.random.default_rng(seed)
    end = pd.Timestamp(end_date or DEFAULT_END_DATE).normalize()
    dates = pd.date_range(end=end, periods=days, freq="D", name="date")

    # The draws from `rng` keep this order: the same seed gives the same sales.
    series = _draw_series(stores=stores, products=products, shares=department_shares, rng=rng)
    on_promotion = _promotion_days(
        series_department=series.department, days=days, rng=rng
    )  # [series, day] bool
    rate = _demand_rate(
        dates=dates,
        series_base_units=series.base_units,
        series_department=series.department,
        trend_per_year=series.trend_per_year,
        on_promotion=on_promotion,
    )
    expected = rate * rng.gamma(noise_shape, 1.0 / noise_shape, size=rate.shape)
    demand = rng.poisson(expected)

    drifted = np.zeros(0, dtype=np.int64)
    if drift_date is not None and drift_fraction > 0 and drift_size != 0:
        drifted = _apply_drift(
            demand,
            expected=expected,
            dates=dates,
            seed=seed,
            drift_date=drift_date,
            drift_fraction=drift_fraction,
            drift_size=drift_size,
        )

    price = series.base_price[:, None] * np.where(on_promotion, 1.0 - PROMOTION_DISCOUNT, 1.0)
    frame = _sales_frame(
        dates=dates,
        stores=stores,
        products=products,
        series=series,
        demand=demand,
        on_promotion=on_promotion,
        price=price,
    )
    # Which series drifted, as (store, product) codes: what a root-cause analysis should find.
    frame.attrs["drifted_series"] = sorted(
        (f"S{series.store[index] + 1:03d}", f"SKU{series.product[index] + 1:05d}")
        for index in drifted
    )
    return frame


@dataclass(frozen=True)
class _Series:
    """Who each series is (store, product, department codes) and what it was drawn to be."""

    store: np.ndarray
    product: np.ndarray
    department: np.ndarray
    product_department: np.ndarray  # per product
    base_units: np.ndarray
    base_price: np.ndarray
    trend_per_year: np.ndarray


def _draw_series(
    *, stores: int, products: int, shares: tuple[float, ...] | None, rng: np.random.Generator
) -> _Series:
    """The series of `stores` x `products` (store-major) and their draws from `rng`, in this
    order: the products' departments, their base units and prices, the stores' sizes, and each
    series' yearly trend."""
    product_department = _assign_departments(products=products, rng=rng, shares=shares)
    product_base_units, product_base_price = _product_bases(product_department, rng=rng)
    store_size = rng.lognormal(0.0, 0.3, size=stores)
    series_store = np.repeat(np.arange(stores), products)
    series_product = np.tile(np.arange(products), stores)
    return _Series(
        store=series_store,
        product=series_product,
        department=product_department[series_product],
        product_department=product_department,
        base_units=product_base_units[series_product] * store_size[series_store],
        base_price=product_base_price[series_product],
        trend_per_year=rng.normal(0.0, 0.15, size=stores * products),
    )


def _product_bases(
    product_department: np.ndarray, *, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Each product's base daily units (a share of slow movers) and base price, drawn from its
    department's profile."""
    products = len(product_department)
    product_base_units = np.empty(products)
    product_base_price = np.empty(products)
    for code, profile in enumerate(DEPARTMENTS):
        in_department = product_department == code
        count = int(in_department.sum())
        base = profile.median_daily_units * rng.lognormal(0.0, 0.5, size=count)
        slow = rng.random(count) < profile.slow_mover_share
        base[slow] = rng.uniform(0.05, 0.5, size=int(slow.sum()))
        product_base_units[in_department] = base
        low, high = profile.price_range
        product_base_price[in_department] = np.exp(rng.uniform(np.log(low), np.log(high), count))
    return product_base_units, product_base_price


def _demand_rate(
    *,
    dates: pd.DatetimeIndex,
    series_base_units: np.ndarray,
    series_department: np.ndarray,
    trend_per_year: np.ndarray,
    on_promotion: np.ndarray,
) -> np.ndarray:
    """Expected units per series and day before noise: base x weekday x season x trend x the
    promotion's lift (larger on weekends)."""
    days = len(dates)
    day_of_week = dates.day_of_week.to_numpy()
    day_of_year = dates.day_of_year.to_numpy()
    years_elapsed = (np.arange(days) - (days - 1)) / 365.25  # 0 on the last day

    weekday_factor = np.array([profile.weekday_factors for profile in DEPARTMENTS])
    yearly_factor = np.array(
        [
            1.0
            + profile.yearly_amplitude
            * np.cos(2 * np.pi * (day_of_year - profile.yearly_peak_day_of_year) / 365.25)
            for profile in DEPARTMENTS
        ]
    )  # [department, day]
    promotion_lift = np.array([p.promotion_lift for p in DEPARTMENTS])[series_department]
    weekend_lift = np.array([p.weekend_promotion_lift for p in DEPARTMENTS])[series_department]
    is_weekend = day_of_week >= 5

    rate = (
        series_base_units[:, None]
        * weekday_factor[series_department][:, day_of_week]
        * yearly_factor[series_department]
        * np.exp(trend_per_year[:, None] * years_elapsed[None, :])
    )
    lift = np.where(
        on_promotion,
        promotion_lift[:, None] * np.where(is_weekend[None, :], weekend_lift[:, None], 1.0),
        1.0,
    )
    rate *= lift
    return rate


def _apply_drift(
    demand: np.ndarray,
    *,
    expected: np.ndarray,
    dates: pd.DatetimeIndex,
    seed: int,
    drift_date: dt.date,
    drift_fraction: float,
    drift_size: float,
) -> None:
    """Multiply the demand of a `drift_fraction` share of the series by (1 + drift_size) from
    `drift_date` on, in place; returns the indices of the drifted series."""
    n_series, days = demand.shape
    # A separate random stream that adjusts only the drifted cells, so that the same seed
    # gives the same sales before the drift date and for the series that do not drift.
    drift_rng = np.random.default_rng([seed, 1])
    drifted = drift_rng.permutation(n_series)[: int(round(drift_fraction * n_series))]
    from_day = int(np.searchsorted(dates.values, np.datetime64(pd.Timestamp(drift_date))))
    cells = np.ix_(drifted, np.arange(from_day, days))
    if drift_size > 0:
        # Poisson(a) + Poisson(a * s) is Poisson(a * (1 + s)).
        demand[cells] += drift_rng.poisson(expected[cells] * drift_size)
    else:
        # Keeping each unit with probability (1 + s) is Poisson(a * (1 + s)).
        demand[cells] = drift_rng.binomial(demand[cells], max(0.0, 1.0 + drift_size))
    return drifted


def _sales_frame(
    *,
    dates: pd.DatetimeIndex,
    stores: int,
    products: int,
    series: _Series,
    demand: np.ndarray,
    on_promotion: np.ndarray,
    price: np.ndarray,
) -> pd.DataFrame:
    """The long frame, one row per series and day, with labels and names as categoricals."""
    days, n_series = len(dates), len(series.store)
    store_labels = np.array([f"S{number:03d}" for number in range(1, stores + 1)], dtype=object)
    product_labels = np.array(
        [f"SKU{number:05d}" for number in range(1, products + 1)], dtype=object
    )
    department_labels = [profile.name for profile in DEPARTMENTS]
    row_store = np.repeat(series.store, days)
    row_product = np.repeat(series.product, days)
    return pd.DataFrame(
        {
            "date": np.tile(dates.values, n_series),
            "store": pd.Categorical.from_codes(row_store, categories=store_labels),
            "product": pd.Categorical.from_codes(row_product, categories=product_labels),
            "department": pd.Categorical.from_codes(
                np.repeat(series.department, days), categories=department_labels
            ),
            "quantity": demand.reshape(-1).astype(np.int64),
            "on_promotion": on_promotion.reshape(-1),
            "price": np.round(price.reshape(-1), 2),
            "store_name": pd.Categorical.from_codes(
                row_store, categories=[f"Store {number}" for number in range(1, stores + 1)]
            ),
            "product_name": pd.Categorical.from_codes(
                row_product,
                categories=[
                    f"{department_labels[series.product_department[index]]} item {index + 1}"
                    for index in range(products)
                ],
            ),
        }
    )


def _assign_departments(
    *, products: int, rng: np.random.Generator, shares: tuple[float, ...] | None = None
) -> np.ndarray:
    """Department code of each product, in the profiles' shares (every department present when
    there are at least three products)."""
    if shares is None:
        shares = tuple(profile.share_of_products for profile in DEPARTMENTS)
    if len(shares) != len(DEPARTMENTS) or min(shares) < 0 or not sum(shares) > 0:
        raise ValueError(f"department_shares needs {len(DEPARTMENTS)} shares >= 0, not all 0")
    shares = np.asarray(shares, dtype=float) / sum(shares)
    counts = np.floor(shares * products).astype(int)
    if products >= len(DEPARTMENTS):
        counts = np.maximum(counts, 1)
    while counts.sum() < products:
        counts[np.argmax(shares * products - counts)] += 1
    while counts.sum() > products:
        counts[np.argmax(counts)] -= 1
    return rng.permutation(np.repeat(np.arange(len(DEPARTMENTS)), counts))


def _promotion_days(
    *, series_department: np.ndarray, days: int, rng: np.random.Generator
) -> np.ndarray:
    """Promotion calendar [series, day]: promotions start at random and run for the
    department's usual number of days."""
    starts_per_day = np.array([p.promotion_starts_per_day for p in DEPARTMENTS])
    starts = rng.random((len(series_department), days)) < starts_per_day[series_department, None]
    started_so_far = np.cumsum(starts, axis=1, dtype=np.int32)
    on_promotion = np.zeros_like(starts)
    for code, profile in enumerate(DEPARTMENTS):
        rows = series_department == code
        length = profile.promotion_length_days
        running = started_so_far[rows]
        before_window = np.zeros_like(running)
        before_window[:, length:] = running[:, :-length] if length < days else 0
        on_promotion[rows] = running - before_window > 0
    return on_promotion


# Promotion calendar the generator's retailer kept: most promotions planned weeks ahead, some
# entered a day or three before they start, some never entered (a store's own markdown), and a
# few plans that were cancelled and never ran.
CALENDAR_LATE_SHARE = 0.2
CALENDAR_UNPLANNED_SHARE = 0.1
CALENDAR_CANCELLED_SHARE = 0.05
CALENDAR_LEAD_DAYS = (7, 28)
CALENDAR_LATE_LEAD_DAYS = (1, 3)


def promotion_calendar_of(
    sales: pd.DataFrame,
    *,
    seed: int,
    late_share: float = CALENDAR_LATE_SHARE,
    unplanned_share: float = CALENDAR_UNPLANNED_SHARE,
    cancelled_share: float = CALENDAR_CANCELLED_SHARE,
) -> pd.DataFrame:
    """The promotion calendar behind generated sales: one row per run of promotion days of a
    series (store, product, start_date, end_date, discount_pct, known_since), with
    `unplanned_share` of the runs left out, `late_share` known only 1-3 days before they start
    and the rest 7-28 days ahead, plus `cancelled_share` as many plans that never ran. The sales
    are not changed; the same arguments give the same calendar."""
    rng = np.random.default_rng([seed, 2])
    runs = all_runs = _promotion_runs(sales)
    kind = rng.random(len(runs))
    planned = kind >= unplanned_share
    late = kind < unplanned_share + late_share
    lead = np.where(
        late,
        rng.integers(CALENDAR_LATE_LEAD_DAYS[0], CALENDAR_LATE_LEAD_DAYS[1] + 1, len(runs)),
        rng.integers(CALENDAR_LEAD_DAYS[0], CALENDAR_LEAD_DAYS[1] + 1, len(runs)),
    )
    runs = runs.assign(lead=lead)[planned]
    cancelled = runs.sample(
        n=int(round(cancelled_share * len(runs))), random_state=np.random.RandomState(seed)
    )
    # A cancelled plan: the same series and length, a few weeks later, when nothing ran.
    shift = pd.to_timedelta(rng.integers(14, 42, len(cancelled)), unit="D")
    cancelled = cancelled.assign(
        start_date=cancelled["start_date"] + shift, end_date=cancelled["end_date"] + shift
    )
    cancelled = cancelled[cancelled["end_date"] <= runs["end_date"].max()]
    cancelled = cancelled[~_overlaps_a_run(cancelled, all_runs)]
    calendar = pd.concat([runs, cancelled], ignore_index=True)
    return pd.DataFrame(
        {
            "store": calendar["store"].astype(str),
            "product": calendar["product"].astype(str),
            "start_date": calendar["start_date"].dt.date,
            "end_date": calendar["end_date"].dt.date,
            "discount_pct": PROMOTION_DISCOUNT * 100,
            "known_since": (
                calendar["start_date"] - pd.to_timedelta(calendar["lead"], unit="D")
            ).dt.date,
        }
    ).sort_values(["start_date", "store", "product"], ignore_index=True)


def _overlaps_a_run(plans: pd.DataFrame, runs: pd.DataFrame) -> np.ndarray:
    """Per plan: whether its series had a promotion on any of its days."""
    pairs = (
        plans.reset_index(drop=True)
        .reset_index()
        .merge(runs, on=["store", "product"], suffixes=("", "_run"))
    )
    overlapping = (pairs["start_date"] <= pairs["end_date_run"]) & (
        pairs["start_date_run"] <= pairs["end_date"]
    )
    hit = np.zeros(len(plans), dtype=bool)
    hit[pairs.loc[overlapping, "index"].to_numpy()] = True
    return hit


def _promotion_runs(sales: pd.DataFrame) -> pd.DataFrame:
    """Runs of consecutive promotion days per series: store, product, start_date, end_date."""
    promoted = sales.loc[sales["on_promotion"], ["store", "product", "date"]].copy()
    promoted["date"] = pd.to_datetime(promoted["date"])
    promoted = promoted.sort_values(["store", "product", "date"], ignore_index=True)
    same_series = (promoted["store"] == promoted["store"].shift()) & (
        promoted["product"] == promoted["product"].shift()
    )
    new_run = ~(same_series & (promoted["date"] - promoted["date"].shift() == pd.Timedelta("1D")))
    promoted["run"] = new_run.cumsum()
    return (
        promoted.groupby("run", sort=False)
        .agg(
            store=("store", "first"),
            product=("product", "first"),
            start_date=("date", "min"),
            end_date=("date", "max"),
        )
        .reset_index(drop=True)
    )


# Stock-outs: a share of the series run empty now and then, for one to seven days at a time.
STOCKOUTS_PER_YEAR = 4.0
STOCKOUT_DAYS = (1, 7)


def with_stockouts(sales: pd.DataFrame, *, share: float, seed: int) -> pd.DataFrame:
    """The sales with stock-outs on `share` of the series (about four runs of 1-7 days a year
    each): on those days nothing is sold and `in_stock` is false (the column is added, true
    elsewhere). The same arguments give the same stock-outs."""
    if not 0.0 <= share <= 1.0:
        raise ValueError("share must be between 0 and 1")
    rng = np.random.default_rng([seed, 3])
    sales = sales.sort_values(["store", "product", "date"], ignore_index=True)
    series = sales.groupby(["store", "product"], sort=False, observed=True).ngroup().to_numpy()
    n_series = int(series.max()) + 1 if len(series) else 0
    n_days = len(sales) // max(n_series, 1)
    out = np.zeros((n_series, n_days), dtype=bool)
    affected = np.flatnonzero(rng.random(n_series) < share)
    starts_per_day = STOCKOUTS_PER_YEAR / 365.0
    for row in affected:
        for start in np.flatnonzero(rng.random(n_days) < starts_per_day):
            length = int(rng.integers(STOCKOUT_DAYS[0], STOCKOUT_DAYS[1] + 1))
            out[row, start : start + length] = True
    in_stock = ~out.reshape(-1)
    return sales.assign(
        quantity=np.where(in_stock, sales["quantity"].to_numpy(), 0),
        in_stock=in_stock,
    )
