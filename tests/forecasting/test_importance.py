"""Feature importance and exact contributions: permutation importance finds what the target
depends on, measuring it at training changes nothing of the model, and XGBoost's contributions
add up to the forecasts it serves."""

import numpy as np
import pandas as pd
import pytest

from forecasting.families import build_model
from forecasting.families.inputs import IDENTITY_LINK, LOG_LINK
from forecasting.importance import (
    IMPORTANCE_SEED,
    fit_measuring_importance,
    held_out_rows,
    permutation_importance,
)
from forecasting.panel import Panel
from forecasting.synthetic import generate_sales

pytestmark = pytest.mark.nodb

QUICK_XGBOOST = {"n_estimators": 40, "max_depth": 4, "calibration_windows": 2}
HELD_OUT_DAYS = 14


def promotion_panel(*, seed: int = 3, stores: int = 2, products: int = 6, days: int = 120):
    """Sales that depend on one thing only: a promotion planned two weeks ahead (on a random
    quarter of the days) lifts demand from about 5 to about 30 units. Nothing else (weekday,
    day of month, store) moves it."""
    random = np.random.default_rng(seed)
    n_series = stores * products
    dates = pd.date_range("2025-01-01", periods=days, freq="D", name="date")
    promoted = random.random((n_series, days)) < 0.25
    quantity = random.poisson(5.0 + 25.0 * promoted).astype(np.float32)
    day_numbers = dates.values.astype("datetime64[D]").astype(np.int64)
    known_from = np.where(promoted, day_numbers[None, :] - 14, np.nan)
    panel = Panel(
        stores=np.repeat([f"S{n}" for n in range(stores)], products).astype(object),
        products=np.tile([f"P{n}" for n in range(products)], stores).astype(object),
        departments=np.full(n_series, "Grocery", dtype=object),
        dates=dates,
        quantity=quantity,
        on_promotion=promoted.astype(np.float32),
    )
    return panel.with_promotion_calendar(known_from)


@pytest.fixture(scope="module")
def promotions():
    panel = promotion_panel()
    first_held_out = panel.dates[-HELD_OUT_DAYS]
    model = build_model("xgboost", **{**QUICK_XGBOOST, "calibration_windows": 0})
    model.fit(panel.until(first_held_out))
    rows = held_out_rows(
        model=model, panel=panel, first_day=first_held_out, max_rows=2_000, seed=IMPORTANCE_SEED
    )
    return model, rows


def test_a_feature_the_target_depends_on_ranks_above_pure_noise(promotions):
    model, rows = promotions

    importance = permutation_importance(model=model, rows=rows)

    ranked = [row["feature"] for row in importance["features"]]
    by_name = {row["feature"]: row for row in importance["features"]}
    assert ranked[0] == "on_promotion", ranked
    # Shuffling the promotion flag costs most of a promotion's lift on a quarter of the days.
    assert by_name["on_promotion"]["importance"] > 3.0
    # (Without a holiday region the model has no holiday features to rank.)
    for noise in ("day_of_month", "store_code", "week_of_year"):
        assert ranked.index(noise) > ranked.index("on_promotion")
        assert by_name[noise]["importance"] < 0.05 * by_name["on_promotion"]["importance"]
    assert importance["metric"] == "mae_increase"
    assert importance["rows"] == len(rows.actual) == HELD_OUT_DAYS * 12
    assert importance["window"]["days"] == HELD_OUT_DAYS
    assert abs(sum(row["share_pct"] for row in importance["features"]) - 100.0) < 1e-6


def test_permutation_importance_is_the_same_for_the_same_seed_only(promotions):
    model, rows = promotions

    first = permutation_importance(model=model, rows=rows, seed=7)
    again = permutation_importance(model=model, rows=rows, seed=7)
    other = permutation_importance(model=model, rows=rows, seed=8)

    assert first == again
    assert first["features"] != other["features"]


@pytest.fixture(scope="module")
def small_panel() -> Panel:
    return Panel.from_frame(generate_sales(stores=2, products=6, days=120, seed=21))


@pytest.mark.parametrize(
    ("algorithm", "hyperparameters"),
    [
        ("seasonal_naive", {"calibration_windows": 2}),
        ("xgboost", QUICK_XGBOOST),
        ("intermittent", {"calibration_windows": 2}),
        (
            "lstm",
            {"epochs": 1, "windows_per_epoch": 300, "hidden_size": 8, "calibration_windows": 1},
        ),
    ],
)
def test_every_family_measures_importance_on_its_held_out_weeks_without_changing_the_fit(
    small_panel, algorithm, hyperparameters
):
    start = small_panel.dates[-7]
    training = small_panel.until(start)
    measured = build_model(algorithm, **hyperparameters)

    record = fit_measuring_importance(measured, training)
    plain = build_model(algorithm, **hyperparameters).fit(training)

    permutation = record["permutation"]
    assert "error" not in record
    assert sorted(row["feature"] for row in permutation["features"]) == sorted(measured.features)
    windows = hyperparameters["calibration_windows"]
    assert permutation["held_out"] == "interval_calibration"
    assert permutation["window"]["days"] == windows * 7
    assert permutation["window"]["end"] == training.last_day.date().isoformat()
    assert permutation["baseline_mae"] > 0
    assert ("mean_abs_contribution" in record) == measured.exact_contributions
    np.testing.assert_array_equal(
        measured.predict(small_panel, start).values, plain.predict(small_panel, start).values
    )


def test_without_calibration_importance_is_measured_on_a_refit_without_the_last_week(
    small_panel,
):
    model = build_model("xgboost", **{**QUICK_XGBOOST, "calibration_windows": 0})

    record = fit_measuring_importance(model, small_panel)

    assert record["permutation"]["held_out"] == "last_week_refit"
    assert record["permutation"]["window"]["days"] == 7
    contributions = record["mean_abs_contribution"]
    assert contributions["space"] == IDENTITY_LINK
    assert len(contributions["features"]) == len(model.features)


@pytest.mark.parametrize(
    ("objective", "link"), [("reg:squarederror", IDENTITY_LINK), ("count:poisson", LOG_LINK)]
)
def test_xgboost_contributions_add_up_to_each_days_forecast(small_panel, objective, link):
    start = small_panel.dates[-7]
    model = build_model("xgboost", **{**QUICK_XGBOOST, "objective": objective})
    model.fit(small_panel.until(start))
    served = model.predict(small_panel, start, horizon=7).values

    for step in range(7):
        explained = model.explain(small_panel, start, step=step)

        assert explained.link == link
        assert explained.contributions.shape == (small_panel.n_series, len(model.features))
        # base + contributions is the model's output; through the link it is the forecast.
        np.testing.assert_allclose(explained.units, served[:, step], atol=1e-3)
        np.testing.assert_array_equal(explained.forecast, served[:, step])
