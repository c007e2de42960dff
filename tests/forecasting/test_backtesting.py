"""Tests of the walk-forward backtest engine."""

import datetime as dt
import itertools

import numpy as np
import pytest

from forecasting.backtesting import walk_forward, weekly_cutoffs
from forecasting.metrics import compute_all
from forecasting.panel import Panel
from forecasting.synthetic import generate_sales

pytestmark = pytest.mark.nodb

FAST_XGBOOST = {"n_estimators": 30, "max_depth": 5}


@pytest.fixture(scope="module")
def panel() -> Panel:
    return Panel.from_frame(generate_sales(stores=2, products=12, days=150, seed=8))


def test_weekly_cutoffs_cover_the_last_90_days_in_13_weeks():
    cutoffs = weekly_cutoffs(dt.date(2025, 12, 31))
    assert len(cutoffs) == 13
    assert cutoffs[-1] == dt.date(2025, 12, 25)
    assert cutoffs[0] == dt.date(2025, 10, 2)
    assert all((later - earlier).days == 7 for earlier, later in itertools.pairwise(cutoffs))
    assert weekly_cutoffs("2025-12-31", days=14) == [dt.date(2025, 12, 18), dt.date(2025, 12, 25)]


def test_each_window_scores_its_forecasts_against_its_actuals(panel):
    cutoffs = weekly_cutoffs(panel.last_day, days=14)
    results = walk_forward(
        algorithm="seasonal_naive", hyperparameters={}, panel=panel, cutoffs=cutoffs
    )

    assert [result.start for result in results] == cutoffs
    last = results[-1]
    assert last.end == panel.last_day.date()
    position = panel.day_position(last.start)
    np.testing.assert_array_equal(last.actual, panel.quantity[:, position:])
    np.testing.assert_array_equal(last.forecast, panel.quantity[:, position - 7 : position])
    assert last.metrics == compute_all(
        last.actual, last.forecast, lower=last.lower, upper=last.upper
    ) | {"coverage": last.metrics["coverage"]}
    assert set(last.department_metrics) == set(panel.departments)
    electronics = panel.departments == "Electronics"
    assert last.department_metrics["Electronics"]["wape"] == pytest.approx(
        compute_all(last.actual[electronics], last.forecast[electronics])["wape"]
    )
    np.testing.assert_array_equal(last.series_index, np.arange(panel.n_series))


def test_changing_data_on_or_after_a_cutoff_changes_no_forecast(panel):
    cutoff = panel.dates[-14]
    changed_quantity = panel.quantity.copy()
    changed_quantity[:, panel.day_position(cutoff) :] *= 3
    changed_quantity[:, -1] = np.nan
    changed = panel.with_quantity(changed_quantity)

    for algorithm, hyperparameters in (("xgboost", FAST_XGBOOST), ("seasonal_naive", {})):
        original = walk_forward(
            algorithm=algorithm, hyperparameters=hyperparameters, panel=panel, cutoffs=[cutoff]
        )[0]
        again = walk_forward(
            algorithm=algorithm, hyperparameters=hyperparameters, panel=changed, cutoffs=[cutoff]
        )[0]
        np.testing.assert_array_equal(original.forecast, again.forecast)
        np.testing.assert_array_equal(original.lower, again.lower)
        np.testing.assert_array_equal(original.upper, again.upper)
        assert not np.array_equal(original.actual, again.actual, equal_nan=True)


def test_windows_past_the_last_day_count_missing_actuals(panel):
    result = walk_forward(
        algorithm="seasonal_naive",
        hyperparameters={},
        panel=panel,
        cutoffs=[panel.dates[-3]],
    )[0]
    assert result.metrics["n_missing"] == panel.n_series * 4
    assert result.metrics["n_points"] == panel.n_series * 3
