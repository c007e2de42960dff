"""Drift root cause: the series' parts add up to the segment's change, the shifted series and
departments are the ones found, and a quiet quarter shows no input shift."""

import datetime as dt
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from forecasting.panel import Panel
from forecasting.synthetic import generate_sales
from mlops.services.rootcause import (
    PSI_THRESHOLD,
    TOP_SERIES,
    breakdown,
    drift_root_cause,
    input_shift,
    psi,
    window_days,
)

pytestmark = pytest.mark.nodb

END = dt.date(2025, 6, 30)
CHANGE = END - dt.timedelta(days=20)


def _weekday_naive(quantity: np.ndarray) -> np.ndarray:
    """A forecast that has not seen a change: the mean of the same weekday of the four weeks
    before the change date, for every day from it on."""
    forecast = np.full(quantity.shape, np.nan)
    for day in range(28, quantity.shape[1]):
        forecast[:, day] = np.nanmean(quantity[:, [day - 7, day - 14, day - 21, day - 28]], axis=1)
    return forecast


def test_recent_days_are_compared_with_the_same_weekdays_of_the_four_weeks_before():
    recent, reference = window_days(change_date=dt.date(2025, 6, 10), until=dt.date(2025, 6, 11))

    assert recent == [dt.date(2025, 6, 10), dt.date(2025, 6, 11)]
    assert len(reference) == 8
    assert {day.weekday() for day in reference} == {day.weekday() for day in recent}
    assert max(reference) < dt.date(2025, 6, 10)


def test_the_series_parts_add_up_to_the_change_of_the_segment():
    # Two series, four days: two reference days (the same weekday a week and two weeks
    # earlier, here columns 0 and 1 stand for them) and two recent days.
    dates = pd.date_range("2025-06-01", periods=15, freq="D")
    quantity = np.zeros((2, 15))
    forecast = np.zeros((2, 15))
    quantity[0, [0, 7]] = 10  # reference: error 0 on series 0 (forecast 10)
    forecast[0, [0, 7]] = 10
    quantity[0, 14] = 16  # recent: it sells 6 more than forecast
    forecast[0, 14] = 10
    quantity[1, [0, 7]] = 5  # series 1: reference error 1 each day, recent error 1 too
    forecast[1, [0, 7]] = 4
    quantity[1, 14] = 5
    forecast[1, 14] = 4
    panel = Panel(
        stores=np.array(["S1", "S2"], dtype=object),
        products=np.array(["A", "B"], dtype=object),
        departments=np.array(["Grocery", "Apparel"], dtype=object),
        dates=dates,
        quantity=quantity,
        on_promotion=np.zeros((2, 15), dtype=bool),
    )
    found = breakdown(
        panel=panel,
        forecast=forecast,
        recent=[dt.date(2025, 6, 15)],
        reference=[dt.date(2025, 6, 1), dt.date(2025, 6, 8)],
    )

    # MAE recent (6 + 1) / 2 = 3.5 against reference (0 + 0 + 1 + 1) / 4 = 0.5: +3.0, all of
    # it series 0's: (6 - 0) / 2 points.
    error = found["error"]
    assert (error["recent"], error["reference"], error["change"]) == (3.5, 0.5, 3.0)
    assert [(row["key"], row["change"], row["share_pct"]) for row in error["by_department"]] == [
        ("Grocery", 3.0, 100.0),
        ("Apparel", 0.0, 0.0),
    ]
    # Bias (actual - forecast): the same here, every error is an under-forecast.
    assert found["bias"]["change"] == 3.0
    assert found["bias"]["top_series"][0]["store"] == "S1"


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    reference = rng.poisson(10, size=5000).astype(float)

    assert psi(reference, rng.poisson(10, size=5000).astype(float)) < 0.02
    assert psi(reference, rng.poisson(14, size=5000).astype(float)) > PSI_THRESHOLD
    assert psi(reference, np.array([np.nan])) is None


def test_the_shifted_series_and_departments_are_the_ones_found():
    sales = generate_sales(
        stores=20,
        products=50,
        days=241,
        seed=1,
        end_date=END,
        drift_date=CHANGE,
        drift_fraction=0.3,
        drift_size=0.4,
    )
    shifted = set(sales.attrs["drifted_series"])
    panel = Panel.from_frame(sales)
    found = drift_root_cause(
        panel=panel,
        forecast=_weekday_naive(panel.quantity.astype(float)),
        change_date=CHANGE,
        until=CHANGE + dt.timedelta(days=6),
        rules=["bias_cusum"],
    )

    assert found["leads"] == "bias"
    top = found["bias"]["top_series"]
    assert len(top) == TOP_SERIES
    assert sum((row["store"], row["product"]) in shifted for row in top) >= 0.8 * TOP_SERIES
    # Each department's share of the extra under-forecast is its share of the extra demand
    # (40% of the shifted series' sales before the change), within 10 points.
    before = panel.quantity[:, panel.day_position(CHANGE) - 28 : panel.day_position(CHANGE)]
    extra = Counter()
    for index in range(panel.n_series):
        if (panel.stores[index], panel.products[index]) in shifted:
            extra[panel.departments[index]] += float(np.nanmean(before[index]))
    expected = {name: 100.0 * value / sum(extra.values()) for name, value in extra.items()}
    found_shares = {row["key"]: row["share_pct"] for row in found["bias"]["by_department"]}
    assert found_shares.keys() == expected.keys()
    for name, share in expected.items():
        assert found_shares[name] == pytest.approx(share, abs=10.0), name


def test_a_quiet_quarter_shows_no_input_shift():
    panel = Panel.from_frame(generate_sales(stores=20, products=50, days=241, seed=1, end_date=END))
    worst = 0.0
    for offset in range(90):
        change = END - dt.timedelta(days=92 - offset)
        recent, reference = window_days(change_date=change, until=change + dt.timedelta(days=2))
        shift = input_shift(panel=panel, recent=recent, reference=reference)
        assert shift["shifted"] == [], (change, shift["inputs"])
        worst = max(worst, *(row["psi"] for row in shift["inputs"]))
    assert 0.0 < worst < PSI_THRESHOLD
