"""Tests of the forecast metrics against values computed by hand."""

import math

import numpy as np
import pytest

from forecasting import metrics

pytestmark = pytest.mark.nodb

# Four points: y = [10, 0, 5, 2], f = [8, 1, 5, 4]; errors f - y = [-2, 1, 0, 2]
ACTUAL = np.array([10.0, 0.0, 5.0, 2.0])
FORECAST = np.array([8.0, 1.0, 5.0, 4.0])


def test_mae_is_mean_absolute_error():
    assert metrics.mae(ACTUAL, FORECAST) == pytest.approx((2 + 1 + 0 + 2) / 4)


def test_mape_averages_only_points_that_sold():
    # |e|/y over y > 0: 2/10, 0/5, 2/2 -> mean 0.4 -> 40%
    assert metrics.mape(ACTUAL, FORECAST) == pytest.approx(40.0)


def test_wape_and_bias_are_relative_to_total_actual():
    assert metrics.wape(ACTUAL, FORECAST) == pytest.approx(5 / 17 * 100)
    assert metrics.bias(ACTUAL, FORECAST) == pytest.approx(1 / 17 * 100)


def test_stockout_miss_rate_counts_ceil_forecast_below_actual():
    # ceil(f) = [9, 1, 5, 4] vs y: only 9 < 10 misses; 4.2 -> 5 covers 5.
    actual = np.array([10.0, 0.0, 5.0, 2.0])
    forecast = np.array([8.5, 0.2, 4.2, 4.0])
    assert metrics.stockout_miss_rate(actual, forecast) == pytest.approx(0.25)


def test_overstock_rate_needs_a_whole_unit_and_the_tolerance():
    actual = np.array([10.0, 0.0, 5.0, 2.0, 10.0])
    forecast = np.array([11.5, 0.5, 7.0, 2.3, 12.5])
    # 11.5: +1.5 but 11.5 <= 12 -> no; 0.5: < 1 unit -> no; 7.0: +2, > 6 -> yes;
    # 2.3: < 1 unit -> no; 12.5: +2.5, > 12 -> yes.
    assert metrics.overstock_rate(actual, forecast) == pytest.approx(2 / 5)
    assert metrics.overstock_rate(actual, forecast, tolerance=1.3) == pytest.approx(1 / 5)


def test_interval_coverage_counts_bounds_inclusive():
    lower = np.array([8.0, 0.0, 5.5, 1.0])
    upper = np.array([10.0, 2.0, 6.0, 1.5])
    # 10 in [8, 10] yes; 0 in [0, 2] yes; 5 in [5.5, 6] no; 2 in [1, 1.5] no.
    assert metrics.interval_coverage(ACTUAL, lower=lower, upper=upper) == pytest.approx(0.5)


def test_coverage_is_share_of_active_series_forecast():
    active = np.array([True, True, False, True])
    forecasted = np.array([True, False, True, True])
    assert metrics.coverage(active=active, forecasted=forecasted) == pytest.approx(2 / 3)
    assert metrics.coverage(active=np.zeros(3, bool), forecasted=np.ones(3, bool)) is None


def test_active_series_sold_in_last_28_days():
    history = np.zeros((3, 40))
    history[0, 39] = 1
    history[1, 5] = 4  # sold, but 35 days before the end
    history[2, 20] = np.nan
    assert metrics.active_series(history).tolist() == [True, False, False]


def test_unknown_actuals_are_excluded_and_counted():
    actual = np.array([[10.0, np.nan], [5.0, 2.0]])
    forecast = np.array([[8.0, 100.0], [5.0, 4.0]])
    result = metrics.compute_all(actual, forecast)

    assert result["n_points"] == 3
    assert result["n_missing"] == 1
    assert result["mae"] == pytest.approx(4 / 3)
    assert result["wape"] == pytest.approx(4 / 17 * 100)


def test_all_zero_actuals_leave_ratio_metrics_undefined():
    actual = np.zeros(4)
    forecast = np.array([0.0, 1.0, 0.0, 2.0])
    result = metrics.compute_all(actual, forecast)

    assert result["mape"] is None
    assert result["wape"] is None
    assert result["bias"] is None
    assert result["mae"] == pytest.approx(0.75)
    assert result["overstock_rate"] == pytest.approx(0.5)
    assert result["stockout_miss_rate"] == 0.0


def test_empty_input_gives_none_everywhere():
    result = metrics.compute_all(np.array([]), np.array([]), lower=np.array([]), upper=np.array([]))

    assert result["n_points"] == 0 and result["n_missing"] == 0
    for name in ("mae", "mape", "wape", "bias", "stockout_miss_rate", "overstock_rate"):
        assert result[name] is None, name
    assert result["interval_coverage"] is None


def test_compute_all_reports_every_metric_and_series_coverage():
    actual = np.array([[10.0, 0.0], [5.0, 2.0], [1.0, 1.0]])
    forecast = np.array([[8.0, 1.0], [5.0, 4.0], [np.nan, np.nan]])
    lower = forecast - 1
    upper = forecast + 1
    result = metrics.compute_all(actual, forecast, lower=lower, upper=upper)

    assert result["coverage"] == pytest.approx(2 / 3)
    assert result["n_unforecast"] == 2
    assert result["mae"] == pytest.approx(5 / 4)
    assert result["interval_coverage"] == pytest.approx(2 / 4)  # 0 in [0,2], 5 in [4,6]
    assert all(not isinstance(value, float) or math.isfinite(value) for value in result.values())


def test_improvement_is_the_share_of_the_baseline_error_removed():
    from forecasting.metrics import improvement_pct

    assert improvement_pct(12.8, 11.2) == pytest.approx(12.5)
    assert improvement_pct(10.0, 11.0) == pytest.approx(-10.0)
    assert improvement_pct(0.0, 1.0) is None
    assert improvement_pct(None, 1.0) is None
