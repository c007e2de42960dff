"""Holidays as known inputs: features from the tenant's country, and closures forecast as zero."""

import dataclasses
import datetime as dt

import pandas as pd
import pytest

from forecasting.families import build_model
from forecasting.features import FEATURE_NAMES, CategoryEncodings, panel_features
from forecasting.known_inputs import HolidayRegion, closure_keys, holiday_features
from forecasting.panel import Panel
from forecasting.synthetic import generate_sales

pytestmark = pytest.mark.nodb
ENGLAND = HolidayRegion(country="GB", subdivision="ENG")


def test_holiday_flag_and_days_to_and_from_the_nearest_holiday():
    dates = pd.date_range("2025-12-20", "2025-12-28", freq="D")
    flag, days_to, days_from = holiday_features(dates, ENGLAND)
    assert flag.tolist() == [0, 0, 0, 0, 0, 1, 1, 0, 0]  # Christmas Day, Boxing Day
    assert days_to.tolist() == [5, 4, 3, 2, 1, 0, 0, 5, 4]  # next: New Year's Day
    # The last holiday before the 20th was 25 August: more than the cap of 30 days ago.
    assert days_from.tolist() == [30, 30, 30, 30, 30, 0, 0, 1, 2]
    # Without a region no day is known as a holiday (constants: no missing cells).
    flag, days_to, days_from = holiday_features(dates, None)
    assert flag.tolist() == [0] * 9
    assert days_to.tolist() == days_from.tolist() == [30] * 9


def test_the_xgboost_features_carry_the_holidays_of_the_panels_region():
    sales = generate_sales(stores=1, products=2, days=60, seed=1, end_date=dt.date(2025, 12, 31))
    panel = dataclasses.replace(Panel.from_frame(sales), holiday_region=ENGLAND)
    features = panel_features(panel=panel, encodings=CategoryEncodings.fit(panel=panel))
    flag = features[:, FEATURE_NAMES.index("is_holiday")].reshape(2, 60)
    holidays_seen = panel.dates[flag[0] == 1].strftime("%m-%d").tolist()
    assert holidays_seen == ["12-25", "12-26"]


def _closed_on_christmas(region):
    sales = generate_sales(stores=3, products=4, days=760, seed=2, end_date=dt.date(2026, 12, 20))
    christmas = pd.to_datetime(sales["date"]).dt.strftime("%m-%d") == "12-25"
    sales.loc[christmas, "quantity"] = 0
    return dataclasses.replace(Panel.from_frame(sales), holiday_region=region)


@pytest.mark.parametrize("region", [ENGLAND, None])
def test_a_day_every_store_closes_each_year_is_forecast_as_zero(region):
    panel = _closed_on_christmas(region)
    assert closure_keys(panel, region) == (("Christmas Day",) if region else ("12-25",))

    model = build_model("seasonal_naive").fit(panel)
    restored = type(model).from_bytes(model.to_bytes())
    forecasts = restored.predict(panel, dt.date(2026, 12, 21), horizon=7)
    christmas = list(forecasts.dates.strftime("%m-%d")).index("12-25")
    assert (forecasts.values[:, christmas] == 0).all()
    assert (forecasts.lower[:, christmas] == 0).all() and (forecasts.upper[:, christmas] == 0).all()
    assert (forecasts.values[:, christmas + 1] > 0).any()  # Boxing Day trades as usual


def test_one_quiet_christmas_among_open_ones_is_no_closure():
    panel = _closed_on_christmas(ENGLAND)
    quantity = panel.quantity.copy()
    quantity[0, panel.day_position(dt.date(2025, 12, 25))] = 3  # one store sold that year
    assert closure_keys(panel.with_quantity(quantity), ENGLAND) == ()


def test_a_model_without_a_region_leaves_the_holiday_features_out_and_one_with_them_still_serves():
    sales = generate_sales(stores=2, products=5, days=200, seed=3, end_date=dt.date(2025, 12, 20))
    plain = Panel.from_frame(sales)
    quick = {"n_estimators": 20, "max_depth": 4, "calibration_windows": 0}

    without = build_model("xgboost", **quick).fit(plain)
    with_region = build_model("xgboost", **quick).fit(
        dataclasses.replace(plain, holiday_region=ENGLAND)
    )

    # Without a region they would be constants: no tree could split on them.
    assert without.features == list(FEATURE_NAMES[:-3])
    assert not {"is_holiday", "days_to_holiday", "days_from_holiday"} & set(without.features)
    assert with_region.features == list(FEATURE_NAMES)
    # A booster with every feature (as versions trained before) reads the same columns when it
    # forecasts a panel without a region, restored from its artifact too.
    legacy = type(with_region).from_bytes(with_region.to_bytes())
    legacy.holiday_region = None
    start = dt.date(2025, 12, 21)
    forecasts = legacy.predict(plain, start, horizon=7)
    assert legacy.features == list(FEATURE_NAMES)
    assert forecasts.values.shape == (10, 7) and (forecasts.values >= 0).all()
    restored = type(without).from_bytes(without.to_bytes())
    assert restored.features == without.features
    assert (
        restored.predict(plain, start, horizon=7).values
        == without.predict(plain, start, horizon=7).values
    ).all()
