"""Tests of the model families: forecasts' shape, intervals, determinism and relative accuracy."""

import datetime as dt
import threading

import numpy as np
import pandas as pd
import pytest

from forecasting.backtesting import walk_forward, weekly_cutoffs
from forecasting.families import FAMILIES, build_model
from forecasting.metrics import compute_all
from forecasting.panel import Panel
from forecasting.synthetic import generate_sales

pytestmark = pytest.mark.nodb

SMALL_LSTM = {"epochs": 2, "windows_per_epoch": 2000, "hidden_size": 16}
FAST_XGBOOST = {"n_estimators": 40, "max_depth": 6}


@pytest.fixture(scope="module")
def small_panel() -> Panel:
    return Panel.from_frame(generate_sales(stores=2, products=15, days=200, seed=21))


@pytest.mark.parametrize(
    ("algorithm", "hyperparameters"),
    [
        ("seasonal_naive", {}),
        ("xgboost", FAST_XGBOOST),
        ("lstm", SMALL_LSTM),
        ("intermittent", {}),
    ],
)
def test_every_family_forecasts_every_series_with_an_interval(
    small_panel, algorithm, hyperparameters
):
    start = small_panel.dates[-7]
    model = build_model(algorithm, **hyperparameters).fit(small_panel.until(start))
    forecasts = model.predict(small_panel, start, horizon=7)

    assert forecasts.values.shape == (small_panel.n_series, 7)
    assert forecasts.dates[0] == start and len(forecasts.dates) == 7
    assert np.isfinite(forecasts.values).all() and (forecasts.values >= 0).all()
    assert (forecasts.lower <= forecasts.values + 1e-6).all()
    assert (forecasts.values <= forecasts.upper + 1e-6).all()
    assert (forecasts.lower >= 0).all()
    assert model.calibration is not None
    frame = forecasts.to_frame()
    assert list(frame.columns) == ["store", "product", "target_date", "value", "lower", "upper"]
    assert len(frame) == small_panel.n_series * 7
    assert model.features and model.hyperparameters["calibration_windows"] == 4


def test_seasonal_naive_repeats_last_weeks_same_weekday(small_panel):
    start = small_panel.dates[-14]
    model = build_model("seasonal_naive").fit(small_panel.until(start))
    forecasts = model.predict(small_panel, start, horizon=10)
    position = small_panel.day_position(start)

    expected = small_panel.quantity[:, position - 7 : position]
    np.testing.assert_array_equal(forecasts.values[:, :7], expected)
    np.testing.assert_array_equal(forecasts.values[:, 7:], expected[:, :3])


def test_forecasts_only_read_history_before_the_start(small_panel):
    start = small_panel.dates[-10]
    model = build_model("xgboost", **FAST_XGBOOST).fit(small_panel.until(start))
    changed = small_panel.quantity.copy()
    changed[:, small_panel.day_position(start) :] += 50
    first = model.predict(small_panel, start)
    second = model.predict(small_panel.with_quantity(changed), start)
    np.testing.assert_array_equal(first.values, second.values)


@pytest.mark.parametrize("algorithm", ["xgboost", "lstm"])
def test_same_seed_same_model(small_panel, algorithm):
    hyperparameters = FAST_XGBOOST if algorithm == "xgboost" else SMALL_LSTM
    start = small_panel.dates[-7]
    history = small_panel.until(start)
    first = build_model(algorithm, **hyperparameters).fit(history).predict(small_panel, start)
    second = build_model(algorithm, **hyperparameters).fit(history).predict(small_panel, start)
    np.testing.assert_array_equal(first.values, second.values)
    np.testing.assert_array_equal(first.upper, second.upper)


def test_unknown_algorithm_and_hyperparameter_are_refused():
    assert set(FAMILIES) == {"seasonal_naive", "xgboost", "lstm", "intermittent"}
    with pytest.raises(ValueError, match="unknown algorithm"):
        build_model("prophet")
    with pytest.raises(ValueError, match="max_depht"):
        build_model("xgboost", max_depht=3)


@pytest.mark.slow
def test_learned_models_beat_seasonal_naive_and_xgboost_intervals_hold_80_percent():
    panel = Panel.from_frame(generate_sales(stores=5, products=40, days=730, seed=7))
    cutoffs = weekly_cutoffs(panel.last_day, days=28)
    assert cutoffs[-1] == dt.date(2025, 12, 25) and len(cutoffs) == 4

    def pooled(algorithm: str, hyperparameters: dict) -> dict:
        windows = walk_forward(
            algorithm=algorithm, hyperparameters=hyperparameters, panel=panel, cutoffs=cutoffs
        )
        stacked = {
            name: np.concatenate([getattr(window, name) for window in windows])
            for name in ("actual", "forecast", "lower", "upper")
        }
        return compute_all(
            stacked["actual"], stacked["forecast"], lower=stacked["lower"], upper=stacked["upper"]
        )

    naive = pooled("seasonal_naive", {})
    xgboost = pooled("xgboost", {"n_estimators": 120})
    lstm = pooled("lstm", {"epochs": 3, "windows_per_epoch": 8000, "calibration_windows": 0})

    assert xgboost["wape"] <= 0.9 * naive["wape"], (xgboost["wape"], naive["wape"])
    assert lstm["wape"] < naive["wape"], (lstm["wape"], naive["wape"])
    assert 0.75 <= xgboost["interval_coverage"] <= 0.85, xgboost["interval_coverage"]


def test_forecasts_frame_has_one_row_per_series_and_day(small_panel):
    start = pd.Timestamp(small_panel.dates[-3])
    forecasts = build_model("seasonal_naive").fit(small_panel).predict(small_panel, start)
    frame = forecasts.to_frame()
    first = frame.iloc[0]
    assert (first["store"], first["product"]) == (small_panel.stores[0], small_panel.products[0])
    assert frame["target_date"].min() == start
    assert frame["target_date"].max() == start + pd.Timedelta(days=6)


def test_a_calibrating_xgboost_fit_trains_its_point_booster_beside_the_calibration_fit(
    small_panel, monkeypatch
):
    """On two cores the calibration's booster and the point booster train at once, each on one
    thread; the model, its intervals and what the held-out hook saw are those of fitting one
    after the other."""
    from forecasting.families import xgboost_family

    recipe = {**FAST_XGBOOST, "calibration_windows": 2}
    cutoff = small_panel.dates[-7]

    def fitted(cores):
        monkeypatch.setattr(xgboost_family, "usable_cores", lambda: cores)
        held_out = []

        def on_held_out(model, panel, start):
            held_out.append((model.booster.num_boosted_rounds(), start, model.booster.save_raw()))

        model = build_model("xgboost", **recipe)
        model.fit(small_panel.until(cutoff), on_held_out=on_held_out)
        return model, held_out

    alone, alone_held_out = fitted(1)
    train, lock, threads = xgboost_family.xgb.train, threading.Lock(), []
    barrier = threading.Barrier(2, timeout=20)

    def side_by_side(parameters, *args, **kwargs):
        with lock:
            threads.append((threading.get_ident(), parameters["nthread"]))
        barrier.wait()  # fails unless the two boosters train at the same time
        return train(parameters, *args, **kwargs)

    monkeypatch.setattr(xgboost_family.xgb, "train", side_by_side)
    together, together_held_out = fitted(2)

    assert len({thread for thread, _ in threads}) == 2
    assert [nthread for _, nthread in threads] == [1, 1]
    assert together_held_out == alone_held_out  # the hook saw the calibration's booster
    assert together.booster.save_raw() != alone_held_out[0][2]
    np.testing.assert_array_equal(
        together.predict(small_panel, cutoff).values, alone.predict(small_panel, cutoff).values
    )
    np.testing.assert_array_equal(
        together.predict(small_panel, cutoff).upper, alone.predict(small_panel, cutoff).upper
    )
    assert together.calibration == alone.calibration
