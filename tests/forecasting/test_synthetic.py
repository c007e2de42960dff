"""Tests that the synthetic sales generator is deterministic and behaves like retail demand."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from forecasting.panel import Panel
from forecasting.synthetic import generate_sales

pytestmark = pytest.mark.nodb


@pytest.fixture(scope="module")
def sales() -> pd.DataFrame:
    return generate_sales(stores=4, products=30, days=730, seed=11)


def test_one_row_per_series_and_day_with_the_agreed_columns(sales):
    assert list(sales.columns) == [
        "date",
        "store",
        "product",
        "department",
        "quantity",
        "on_promotion",
        "price",
        "store_name",
        "product_name",
    ]
    assert len(sales) == 4 * 30 * 730
    assert sales.groupby(["store", "product"], observed=True).ngroups == 120
    assert sales["quantity"].dtype == np.int64 and (sales["quantity"] >= 0).all()
    assert sales["on_promotion"].dtype == bool
    assert set(sales["department"]) == {"Electronics", "Grocery", "Apparel"}
    assert sales["date"].max() == pd.Timestamp("2025-12-31")


def test_same_arguments_give_the_same_sales(sales):
    again = generate_sales(stores=4, products=30, days=730, seed=11)
    pd.testing.assert_frame_equal(sales, again)
    other = generate_sales(stores=4, products=30, days=730, seed=12)
    assert not sales["quantity"].equals(other["quantity"])


def test_end_date_moves_the_calendar():
    sales = generate_sales(stores=1, products=3, days=10, seed=1, end_date=dt.date(2026, 3, 1))
    assert sales["date"].min() == pd.Timestamp("2026-02-20")
    assert sales["date"].max() == pd.Timestamp("2026-03-01")


def test_promotions_lift_sales_and_cut_the_price(sales):
    by_promotion = sales.groupby(["product", "on_promotion"], observed=True)["quantity"].mean()
    lifted = by_promotion.unstack().dropna()
    assert (lifted[True] > lifted[False]).mean() > 0.8
    regular = sales[~sales["on_promotion"]].groupby("product", observed=True)["price"].first()
    promoted = sales[sales["on_promotion"]].groupby("product", observed=True)["price"].first()
    assert (promoted < regular.loc[promoted.index]).all()


def test_electronics_sells_on_weekends_and_slow_movers_have_zero_days(sales):
    weekday = sales["date"].dt.day_of_week
    electronics = sales[(sales["department"] == "Electronics") & ~sales["on_promotion"]]
    grocery = sales[(sales["department"] == "Grocery") & ~sales["on_promotion"]]

    def weekend_ratio(frame: pd.DataFrame) -> float:
        days = frame["date"].dt.day_of_week
        return frame.loc[days >= 5, "quantity"].mean() / frame.loc[days < 5, "quantity"].mean()

    assert weekend_ratio(electronics) > 2.5
    assert weekend_ratio(grocery) < 1.3
    zero_share = (sales["quantity"] == 0).groupby(sales["product"], observed=True).mean()
    assert (zero_share > 0.5).any()
    assert weekday.nunique() == 7


def test_yearly_seasonality_peaks_late_in_the_year(sales):
    apparel = sales[sales["department"] == "Apparel"]
    by_month = apparel.groupby(apparel["date"].dt.month)["quantity"].mean()
    assert by_month.loc[[11, 12]].mean() > 1.3 * by_month.loc[[5, 6]].mean()


def test_drift_multiplies_demand_of_a_share_of_series_from_the_drift_date():
    arguments = {"stores": 2, "products": 50, "days": 120, "seed": 5}
    drift_date = dt.date(2025, 12, 1)
    base = Panel.from_frame(generate_sales(**arguments))
    drifted = Panel.from_frame(
        generate_sales(**arguments, drift_date=drift_date, drift_fraction=0.5, drift_size=1.0)
    )
    start = base.day_position(drift_date)

    np.testing.assert_array_equal(base.quantity[:, :start], drifted.quantity[:, :start])
    ratio = drifted.quantity[:, start:].sum(axis=1) / np.maximum(
        base.quantity[:, start:].sum(axis=1), 1
    )
    busy = base.quantity[:, start:].sum(axis=1) > 100
    assert 0.3 < (ratio[busy] > 1.5).mean() < 0.7
    assert drifted.quantity[:, start:].sum() > 1.3 * base.quantity[:, start:].sum()


@pytest.mark.nodb
def test_a_cancelled_plan_falls_on_days_its_series_had_no_promotion():
    from forecasting.synthetic import promotion_calendar_of

    # The demo's quick size: a shifted plan once landed on a real run, repeating its row.
    sales = generate_sales(stores=6, products=20, days=420, seed=42, end_date=dt.date(2026, 12, 5))
    calendar = promotion_calendar_of(sales, seed=42)

    keys = ["store", "product", "start_date", "end_date", "known_since"]
    assert not calendar.duplicated(keys).any()
    promoted = sales.loc[sales["on_promotion"], ["store", "product", "date"]]
    days = promoted["date"].dt.date
    promoted = set(zip(promoted["store"], promoted["product"], days, strict=True))
    ran = [
        any(
            (row.store, row.product, day) in promoted
            for day in pd.date_range(row.start_date, row.end_date).date
        )
        for row in calendar.itertuples()
    ]
    # Every plan but the cancelled ones (5% of the planned runs) covers a real promotion.
    assert 0 < ran.count(False) <= 0.06 * len(calendar)
