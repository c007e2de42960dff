"""Tests that model features are computed correctly and never read the target day's sales."""

import numpy as np
import pandas as pd
import pytest

from forecasting.features import (
    FEATURE_NAMES,
    LOOKBACK_DAYS,
    CategoryEncodings,
    PanelTrainingRows,
    iso_week,
    panel_features,
    training_rows,
)
from forecasting.panel import Panel
from forecasting.synthetic import generate_sales

pytestmark = pytest.mark.nodb


@pytest.fixture(scope="module")
def panel() -> Panel:
    return Panel.from_frame(generate_sales(stores=2, products=6, days=120, seed=4))


def _column(name: str) -> int:
    return FEATURE_NAMES.index(name)


def test_no_feature_of_a_day_reads_sales_on_or_after_it(panel):
    encodings = CategoryEncodings.fit(panel=panel)
    day = 80
    original = panel_features(panel=panel, encodings=encodings, first_day=day, last_day=day + 1)

    rng = np.random.default_rng(0)
    perturbed_quantity = panel.quantity.copy()
    perturbed_quantity[:, day:] = rng.integers(0, 1000, size=perturbed_quantity[:, day:].shape)
    perturbed_quantity[0, day + 3] = np.nan
    perturbed = panel.with_quantity(perturbed_quantity)
    after = panel_features(panel=perturbed, encodings=encodings, first_day=day, last_day=day + 1)

    np.testing.assert_array_equal(original, after)
    # ... while the next day's lag_1 does see the perturbed day.
    next_day = panel_features(panel=perturbed, encodings=encodings, first_day=day + 1)
    np.testing.assert_array_equal(
        next_day[:: perturbed.n_days - day - 1, _column("lag_1")], perturbed_quantity[:, day]
    )


def test_lags_and_rolling_statistics_match_pandas(panel):
    encodings = CategoryEncodings.fit(panel=panel)
    features = panel_features(panel=panel, encodings=encodings)
    series = 3
    rows = features[series * panel.n_days : (series + 1) * panel.n_days]
    history = pd.Series(panel.quantity[series].astype(np.float64))

    for lag in (1, 7, 14, 28):
        np.testing.assert_allclose(rows[:, _column(f"lag_{lag}")], history.shift(lag), rtol=1e-6)
    for window in (7, 28):
        rolled = history.shift(1).rolling(window, min_periods=window)
        full = slice(window + 1, None)
        np.testing.assert_allclose(
            rows[full, _column(f"rolling_mean_{window}")], rolled.mean()[full], rtol=1e-5
        )
        np.testing.assert_allclose(
            rows[full, _column(f"rolling_std_{window}")], rolled.std()[full], rtol=1e-4, atol=1e-4
        )


def test_calendar_promotion_and_category_codes(panel):
    encodings = CategoryEncodings.fit(panel=panel)
    features = panel_features(panel=panel, encodings=encodings, first_day=50, last_day=51)
    day = panel.dates[50]

    assert (features[:, _column("day_of_week")] == day.day_of_week).all()
    assert (features[:, _column("day_of_month")] == day.day).all()
    assert (features[:, _column("month")] == day.month).all()
    assert (features[:, _column("week_of_year")] == day.isocalendar().week).all()
    np.testing.assert_array_equal(features[:, _column("on_promotion")], panel.on_promotion[:, 50])
    expected_departments = [encodings.departments.index(d) for d in panel.departments]
    np.testing.assert_array_equal(features[:, _column("department_code")], expected_departments)
    assert set(features[:, _column("store_code")]) == {0.0, 1.0}


def test_unknown_categories_become_missing(panel):
    encodings = CategoryEncodings.fit(panel=panel)
    codes = encodings.department_codes(np.array(["Grocery", "Garden"], dtype=object))
    assert codes[0] == encodings.departments.index("Grocery")
    assert np.isnan(codes[1])
    assert CategoryEncodings.from_dict(encodings.to_dict()) == encodings


def test_training_rows_skip_unknown_targets_and_the_warm_up_days(panel):
    quantity = panel.quantity.copy()
    quantity[0, 100] = np.nan
    encodings = CategoryEncodings.fit(panel=panel)
    features, target = training_rows(panel=panel.with_quantity(quantity), encodings=encodings)

    assert len(target) == panel.n_series * (panel.n_days - LOOKBACK_DAYS) - 1
    assert features.shape == (len(target), len(FEATURE_NAMES))
    assert features.dtype == np.float32 and not np.isnan(target).any()


@pytest.mark.parametrize(
    ("first_day", "n_days"), [(0, 120), (0, 60), (17, 50), (40, LOOKBACK_DAYS + 1)]
)
def test_training_rows_sliced_from_the_whole_panel_equal_those_built_from_the_run(
    panel, first_day, n_days
):
    quantity = panel.quantity.copy()
    quantity[3, 50:53] = np.nan  # a store that did not report: those targets are left out
    quantity[7, 90] = np.nan
    gappy = panel.with_quantity(quantity)
    encodings = CategoryEncodings.fit(panel=gappy)
    run = gappy.window(gappy.dates[first_day], gappy.dates[first_day + n_days - 1])

    features, target = PanelTrainingRows(panel=gappy, encodings=encodings).of(
        first_day=first_day, n_days=n_days
    )
    expected_features, expected_target = training_rows(panel=run, encodings=encodings)

    assert features.flags.f_contiguous
    np.testing.assert_array_equal(features, expected_features)
    np.testing.assert_array_equal(target, expected_target)


def test_training_rows_in_batches_are_the_rows_of_the_run_in_the_same_order(panel):
    quantity = panel.quantity.copy()
    quantity[3, 50:53] = np.nan
    gappy = panel.with_quantity(quantity)
    rows = PanelTrainingRows(panel=gappy, encodings=CategoryEncodings.fit(panel=gappy))
    features, target = rows.of(first_day=10, n_days=90)

    batches = list(rows.batches(first_day=10, n_days=90, rows_per_batch=2 * (90 - LOOKBACK_DAYS)))

    assert len(batches) == -(-gappy.n_series // 2)  # two series a batch
    assert all(batch.flags.f_contiguous for batch, _ in batches)
    np.testing.assert_array_equal(np.concatenate([batch for batch, _ in batches]), features)
    np.testing.assert_array_equal(np.concatenate([known for _, known in batches]), target)


def test_training_rows_of_a_run_outside_the_panel_or_within_its_lookback_are_refused(panel):
    rows = PanelTrainingRows(panel=panel, encodings=CategoryEncodings.fit(panel=panel))
    with pytest.raises(ValueError, match="lookback"):
        rows.of(first_day=0, n_days=LOOKBACK_DAYS)
    with pytest.raises(ValueError, match="within the panel"):
        rows.of(first_day=100, n_days=30)


def test_iso_week_numbers_match_the_calendar_across_year_boundaries():
    # 2020 and 2026 have a week 53; 2021-01-03 still belongs to 2020's week 53.
    dates = pd.date_range("2019-12-20", "2032-01-10")
    assert (iso_week(dates) == dates.isocalendar().week.to_numpy()).all()
    assert iso_week(pd.DatetimeIndex(["2021-01-03", "2021-01-04", "2026-12-31"])).tolist() == [
        53,
        1,
        53,
    ]
