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


# -- the retail pack --------------------------------------------------------------------------

NAN = np.nan


def test_seasonal_naive_is_the_same_weekday_a_week_before():
    history = np.array([[1.0, 2, 3, 4, 5, 6, 7]])
    actual = np.array([[10.0, 20, 30, 40, 50, 60, 70, 80, 90]])
    # Days 0..6 read the history; days 7 and 8 read scored days 0 and 1, a week before them.
    assert metrics.seasonal_naive(actual, history=history).tolist() == [
        [1, 2, 3, 4, 5, 6, 7, 10, 20]
    ]
    # Without history the first week has no naive forecast.
    naive = metrics.seasonal_naive(actual, history=np.zeros((1, 0)))
    assert np.isnan(naive[0, :7]).all() and naive[0, 7:].tolist() == [10, 20]


def test_fva_is_the_share_of_naive_error_removed():
    # MAE 1.25; naive [6, 2, 5, 2] errs [4, 2, 0, 0] -> 1.5; 1 - 1.25 / 1.5 = 16.67% better.
    assert metrics.fva_pct(ACTUAL, FORECAST, naive=np.array([6.0, 2, 5, 2])) == pytest.approx(
        100 / 6
    )
    # Naive errs [0, 0, 0, 1] -> 0.25: the forecast is 400% worse.
    assert metrics.fva_pct(ACTUAL, FORECAST, naive=np.array([10.0, 0, 5, 3])) == pytest.approx(
        -400.0
    )


def test_fva_compares_only_points_with_a_naive_forecast():
    # The first point has no naive forecast: over the rest the forecast errs [1, 0, 2] (MAE 1)
    # and naive [2, 5, 2] errs [2, 0, 0] (MAE 2/3): 1 - 1 / (2/3) = 50% worse.
    naive = np.array([NAN, 2.0, 5, 2])
    assert metrics.fva_pct(ACTUAL, FORECAST, naive=naive) == pytest.approx(-50.0)


def test_fva_is_undefined_when_naive_is_perfect_or_missing():
    assert metrics.fva_pct(ACTUAL, FORECAST, naive=ACTUAL.copy()) is None
    assert metrics.fva_pct(ACTUAL, FORECAST, naive=np.full(4, NAN)) is None
    # Zero demand forecast as zero by naive: 0 error to beat, undefined.
    assert metrics.fva_pct(np.zeros(3), np.ones(3), naive=np.zeros(3)) is None


# Two weeks of in-sample history per series. A steps up by 2 each week-day pair: the naive
# errs 2 every day (MAE scale 2, MSE scale 4). B goes from nothing to 1,0,1,0,1,0,1: it errs
# [1,0,1,0,1,0,1] (MAE scale 4/7, MSE scale 4/7).
SCALE_HISTORY = np.array(
    [
        [1.0, 2, 3, 4, 5, 6, 7, 3, 4, 5, 6, 7, 8, 9],
        [0.0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1],
    ]
)
# A errs [2, 3] (MAE 2.5, MSE 6.5); B errs [0, 1] (MAE 0.5, MSE 0.5).
SCALED_ACTUAL = np.array([[10.0, 10], [1, 0]])
SCALED_FORECAST = np.array([[8.0, 13], [1, 1]])


def test_mase_is_the_mean_over_series_of_mae_over_naive_mae():
    # A: 2.5 / 2 = 1.25; B: 0.5 / (4/7) = 0.875; mean 1.0625.
    assert metrics.mase(SCALED_ACTUAL, SCALED_FORECAST, history=SCALE_HISTORY) == pytest.approx(
        1.0625
    )


def test_rmsse_is_the_mean_over_series_of_rmse_over_naive_rmse():
    # A: sqrt(6.5 / 4); B: sqrt(0.5 / (4/7)) = sqrt(0.875).
    expected = (math.sqrt(6.5 / 4) + math.sqrt(0.875)) / 2
    assert metrics.rmsse(SCALED_ACTUAL, SCALED_FORECAST, history=SCALE_HISTORY) == pytest.approx(
        expected
    )


def test_series_too_short_or_flat_are_left_out_of_scaled_errors():
    short = np.full(14, NAN)
    short[-7:] = [1.0, 2, 3, 4, 5, 6, 7]  # 7 known days: fewer than 8
    flat = np.zeros(14)  # the naive never errs: a zero scale
    history = np.vstack([SCALE_HISTORY[0], short, flat])
    actual = np.array([[10.0, 10], [5, 5], [1, 1]])
    forecast = np.array([[8.0, 13], [0, 0], [0, 0]])
    # Only A counts: 1.25 and sqrt(6.5 / 4).
    assert metrics.mase(actual, forecast, history=history) == pytest.approx(1.25)
    assert metrics.rmsse(actual, forecast, history=history) == pytest.approx(math.sqrt(6.5 / 4))
    # With no series that can be scaled, both are None.
    assert metrics.mase(actual[1:], forecast[1:], history=history[1:]) is None
    assert metrics.rmsse(actual[1:], forecast[1:], history=history[1:]) is None


def test_eight_known_days_are_enough_to_scale():
    history = np.full((1, 14), NAN)
    history[0, -8:] = [1.0, 2, 3, 4, 5, 6, 7, 3]  # one pair: 3 against 1 -> scale 2
    assert metrics.naive_scale(history).tolist() == [2.0]
    assert metrics.mase(np.array([[4.0]]), np.array([[3.0]]), history=history) == 0.5


def test_wql_averages_weighted_pinball_losses_of_the_three_quantiles():
    lower = np.array([6.0, 0, 4, 1])
    upper = np.array([12.0, 2, 7, 5])
    # q=0.1 on lower: y - lo = [4, 0, 1, 1] -> 0.1 * 6 = 0.6
    # q=0.5 on the forecast: y - f = [2, -1, 0, -2] -> 0.5 * 5 = 2.5
    # q=0.9 on upper: y - hi = [-2, -2, -2, -3] -> 0.1 * 9 = 0.9
    # mean of 2 * loss / 17 over the three: 2 * 4.0 / 17 / 3 = 8/51.
    assert metrics.wql(ACTUAL, FORECAST, lower=lower, upper=upper) == pytest.approx(8 / 51)


def test_wql_is_undefined_without_demand_or_bounds():
    zeros = np.zeros(4)
    assert metrics.wql(zeros, FORECAST, lower=zeros, upper=FORECAST) is None
    nowhere = np.full(4, NAN)
    assert metrics.wql(ACTUAL, FORECAST, lower=nowhere, upper=nowhere) is None


def test_tracking_signal_is_cumulative_error_over_mad_per_series():
    # y - f = [2, 2, -1, 2]: sum 5, MAD 7/4 -> 20/7 (actuals above forecast: positive).
    assert metrics.tracking_signal(
        np.array([10.0, 12, 8, 10]), np.array([8.0, 10, 9, 8])
    ) == pytest.approx(20 / 7)
    # A second series erring [-1, -2] (over-forecast): sum -3, MAD 1.5 -> -2; mean of the two.
    actual = np.array([[10.0, 12, 8, 10], [5, 5, NAN, NAN]])
    forecast = np.array([[8.0, 10, 9, 8], [6, 7, NAN, NAN]])
    assert metrics.tracking_signal(actual, forecast) == pytest.approx((20 / 7 - 2) / 2)


def test_a_steady_under_forecast_leaves_the_tracking_band():
    signal = metrics.tracking_signal(np.full(6, 5.0), np.full(6, 4.0))
    assert signal == pytest.approx(6.0) and signal > metrics.TRACKING_SIGNAL_BAND


def test_tracking_signal_is_undefined_without_error():
    assert metrics.tracking_signal(np.zeros((2, 3)), np.zeros((2, 3))) is None
    # A perfect series is left out of the mean; the other one counts.
    actual = np.array([[1.0, 1], [5, 5]])
    forecast = np.array([[1.0, 1], [4, 4]])
    assert metrics.tracking_signal(actual, forecast) == pytest.approx(2.0)


def test_compute_all_reports_the_retail_pack_for_series_with_history():
    lower = np.where(np.isnan(SCALED_FORECAST), NAN, SCALED_FORECAST - 1)
    upper = SCALED_FORECAST + 1
    result = metrics.compute_all(
        SCALED_ACTUAL, SCALED_FORECAST, lower=lower, upper=upper, history=SCALE_HISTORY
    )

    assert result["mase"] == pytest.approx(1.0625)
    # Naive is the history's same weekday a week before: [3, 4] for A, [1, 0] for B, erring
    # [7, 6, 0, 0] (MAE 3.25); the forecast's MAE is 1.5: 1 - 1.5 / 3.25 = 53.8% better.
    assert result["fva_pct"] == pytest.approx(100 * (1 - 1.5 / 3.25))
    assert result["tracking_signal"] == pytest.approx((-1 / 2.5 * 1 + -1 / 0.5) / 2)
    assert result["wql"] is not None
    assert all(not isinstance(value, float) or math.isfinite(value) for value in result.values())


def test_compute_all_leaves_the_retail_pack_out_without_series_or_history():
    result = metrics.compute_all(ACTUAL, FORECAST)

    for name in metrics.RETAIL_METRICS:
        assert result[name] is None, name


def test_zero_demand_gives_none_not_infinity_in_the_retail_pack():
    zeros = np.zeros((2, 7))
    result = metrics.compute_all(zeros, zeros, lower=zeros, upper=zeros, history=np.zeros((2, 14)))

    for name in metrics.RETAIL_METRICS:
        assert result[name] is None, name
