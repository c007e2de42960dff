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
) -> pd.DataFrame:
    """Daily sales of `stores` x `products` series over `days` days ending on `end_date`, one row
    per series and day (zeros included), the same for the same arguments.

    Columns: date, store, product, department, quantity (int), on_promotion (bool), price,
    store_name, product_name. From `drift_date` on, demand of a `drift_fraction` share of the
    series is multiplied by (1 + drift_size).
    """
    if stores < 1 or products < 1 or days < 1:
        raise ValueError("stores, products and days must be positive")
    if not 0.0 <= drift_fraction <= 1.0:
        raise ValueError("drift_fraction must be between 0 and 1")
    rng = np.random.default_rng(seed)
    end = pd.Timestamp(end_date or DEFAULT_END_DATE).normalize()
    dates = pd.date_range(end=end, periods=days, freq="D", name="date")
    n_series = stores * products

    product_department = _assign_departments(products=products, rng=rng)
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
    store_size = rng.lognormal(0.0, 0.3, size=stores)

    series_store = np.repeat(np.arange(stores), products)
    series_product = np.tile(np.arange(products), stores)
    series_department = product_department[series_product]

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
    trend_per_year = rng.normal(0.0, 0.15, size=n_series)

    on_promotion = _promotion_days(
        series_department=series_department, days=days, rng=rng
    )  # [series, day] bool
    promotion_lift = np.array([p.promotion_lift for p in DEPARTMENTS])[series_department]
    weekend_lift = np.array([p.weekend_promotion_lift for p in DEPARTMENTS])[series_department]
    is_weekend = day_of_week >= 5

    rate = (
        (product_base_units[series_product] * store_size[series_store])[:, None]
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

    expected = rate * rng.gamma(NOISE_SHAPE, 1.0 / NOISE_SHAPE, size=rate.shape)
    demand = rng.poisson(expected)

    if drift_date is not None and drift_fraction > 0 and drift_size != 0:
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

    price = product_base_price[series_product][:, None] * np.where(
        on_promotion, 1.0 - PROMOTION_DISCOUNT, 1.0
    )

    store_labels = np.array([f"S{number:03d}" for number in range(1, stores + 1)], dtype=object)
    product_labels = np.array(
        [f"SKU{number:05d}" for number in range(1, products + 1)], dtype=object
    )
    department_labels = [profile.name for profile in DEPARTMENTS]
    row_store = np.repeat(series_store, days)
    row_product = np.repeat(series_product, days)
    return pd.DataFrame(
        {
            "date": np.tile(dates.values, n_series),
            "store": pd.Categorical.from_codes(row_store, categories=store_labels),
            "product": pd.Categorical.from_codes(row_product, categories=product_labels),
            "department": pd.Categorical.from_codes(
                np.repeat(series_department, days), categories=department_labels
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
                    f"{department_labels[product_department[index]]} item {index + 1}"
                    for index in range(products)
                ],
            ),
        }
    )


def _assign_departments(*, products: int, rng: np.random.Generator) -> np.ndarray:
    """Department code of each product, in the profiles' shares (every department present when
    there are at least three products)."""
    shares = np.array([profile.share_of_products for profile in DEPARTMENTS])
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
