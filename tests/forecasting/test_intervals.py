"""Conformal intervals per horizon step and per group: every volume band near 80%."""

import numpy as np
import pytest

from forecasting.intervals import ConformalCalibration, interval_groups

pytestmark = pytest.mark.nodb


def _counts(rng, departments):
    """Negative-binomial counts of slow (< 1 a day), middling (1-5) and fast (5-30) series."""
    level = np.concatenate(
        [rng.uniform(0.05, 1, 1000), rng.uniform(1, 5, 1000), rng.uniform(5, 30, 1000)]
    )
    forecast = np.repeat(level[:, None], 7, axis=1)
    actual = rng.poisson(forecast * rng.gamma(4, 1 / 4, forecast.shape)).astype(float)
    return forecast, actual


def test_each_volume_band_of_a_department_is_covered_about_80_percent():
    rng = np.random.default_rng(0)
    departments = np.array(["Grocery"] * 3000, dtype=object)
    forecast, actual = _counts(rng, departments)
    later_forecast, later_actual = _counts(rng, departments)

    def band_coverage(groups_of) -> list[float]:
        calibration = ConformalCalibration.from_residuals(
            actual=actual, forecast=forecast, groups=groups_of(forecast)
        )
        restored = ConformalCalibration.from_dict(calibration.to_dict())
        lower, upper = restored.interval(later_forecast, groups=groups_of(later_forecast))
        covered = (lower <= later_actual) & (later_actual <= upper)
        return [float(covered[band * 1000 : (band + 1) * 1000].mean()) for band in range(3)]

    pooled = band_coverage(lambda values: None)
    banded = band_coverage(lambda values: interval_groups(departments, values))
    # One pooled set covers slow movers far too often and middling ones too rarely.
    assert pooled[0] > 0.88 and pooled[1] < 0.75
    assert all(0.77 <= share <= 0.83 for share in banded)


def test_a_group_with_too_few_residuals_falls_back_to_the_more_general_quantiles():
    rng = np.random.default_rng(1)
    forecast = np.full((300, 7), 3.0)
    actual = rng.poisson(forecast).astype(float)
    departments = np.array(["Grocery"] * 250 + ["Toys"] * 50, dtype=object)
    calibration = ConformalCalibration.from_residuals(
        actual=actual, forecast=forecast, groups=interval_groups(departments, forecast)
    )
    assert sorted(calibration.groups) == ["Grocery", "Grocery|1"]
    toys = interval_groups(np.array(["Toys"], dtype=object), forecast[:1])
    _, upper = calibration.interval(forecast[:1], groups=toys)
    _, pooled_upper = calibration.interval(forecast[:1])
    np.testing.assert_array_equal(upper, pooled_upper)
