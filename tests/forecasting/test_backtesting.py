"""Tests of the walk-forward backtest engine."""

import dataclasses
import datetime as dt
import itertools
import threading

import numpy as np
import pandas as pd
import pytest

from forecasting.backtesting import walk_forward, weekly_cutoffs
from forecasting.families import build_model
from forecasting.families.base import WarmStart
from forecasting.metrics import SCALE_HISTORY_DAYS, compute_all
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
        last.actual,
        last.forecast,
        lower=last.lower,
        upper=last.upper,
        history=panel.quantity[:, position - SCALE_HISTORY_DAYS : position],
    ) | {"coverage": last.metrics["coverage"]}
    # The seasonal-naive recipe is the baseline FVA measures against: it adds nothing.
    assert last.metrics["fva_pct"] == pytest.approx(0.0)
    assert last.metrics["mase"] > 0 and last.metrics["tracking_signal"] is not None
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


def test_the_first_window_is_the_recipe_fitted_on_its_training_days_alone(panel):
    cutoffs = weekly_cutoffs(panel.last_day, days=21)
    recipe = {**FAST_XGBOOST, "calibration_windows": 0}

    first = walk_forward(
        algorithm="xgboost",
        hyperparameters=recipe,
        panel=panel,
        cutoffs=cutoffs,
        training_days=60,
    )[0]

    cutoff = pd.Timestamp(cutoffs[0])
    alone = build_model("xgboost", **recipe).fit(
        panel.window(cutoff - pd.Timedelta(days=60), cutoff - pd.Timedelta(days=1))
    )
    np.testing.assert_array_equal(first.forecast, alone.predict(panel, cutoff).values)


@pytest.mark.parametrize("warm_start", [None, WarmStart(rounds=10, full_refit_every=2)])
def test_no_window_reads_data_on_or_after_its_cutoff_when_windows_share_work(panel, warm_start):
    """The windows share features built over the whole panel, the first window's feature bins
    and (warm-started) trees; changing the data from the second cutoff on must leave the first
    two windows as they were, calibration fits included."""
    cutoffs = weekly_cutoffs(panel.last_day, days=21)
    changed_quantity = panel.quantity.copy()
    changed_quantity[:, panel.day_position(cutoffs[1]) :] *= 3
    changed = panel.with_quantity(changed_quantity)
    recipe = {**FAST_XGBOOST, "calibration_windows": 2}

    original, again = (
        walk_forward(
            algorithm="xgboost",
            hyperparameters=recipe,
            panel=data,
            cutoffs=cutoffs,
            warm_start=warm_start,
        )
        for data in (panel, changed)
    )

    for before, after in zip(original[:2], again[:2], strict=True):
        np.testing.assert_array_equal(before.forecast, after.forecast)
        np.testing.assert_array_equal(before.lower, after.lower)
        np.testing.assert_array_equal(before.upper, after.upper)
    assert not np.array_equal(original[2].forecast, again[2].forecast)


def test_a_warm_started_fit_keeps_the_earlier_fits_first_trees_and_chains_restart(panel):
    recipe = {**FAST_XGBOOST, "calibration_windows": 0}
    session = build_model("xgboost", **recipe).refit_session(
        panel, warm_start=WarmStart(rounds=10, full_refit_every=2)
    )
    boosters = []
    for last_day in (-21, -14, -7):
        model = build_model("xgboost", **recipe)
        model.fit(panel.until(panel.dates[last_day]), session=session)
        boosters.append(model.booster)

    def trees(booster, count):
        return booster[:count].get_dump()

    assert all(booster.num_boosted_rounds() == 30 for booster in boosters)
    # The second fit continues the first: its first 20 trees are the first's.
    assert trees(boosters[1], 20) == trees(boosters[0], 20)
    assert trees(boosters[1], 30) != trees(boosters[0], 30)
    # The third starts a new chain (a full refit every second fit).
    assert trees(boosters[2], 1) != trees(boosters[1], 1)


def test_a_warm_start_never_continues_a_fit_that_trained_on_later_days(panel):
    """A calibration fit ends weeks before the fit of the window before it ended: it must be a
    full refit, exactly as in a session without warm start."""
    recipe = {**FAST_XGBOOST, "calibration_windows": 0}

    def second_fit(warm_start):
        session = build_model("xgboost", **recipe).refit_session(panel, warm_start=warm_start)
        for last_day in (-7, -28):
            model = build_model("xgboost", **recipe)
            model.fit(panel.until(panel.dates[last_day]), session=session)
        return model.booster.get_dump()

    assert second_fit(WarmStart(rounds=10, full_refit_every=4)) == second_fit(None)


def test_windows_with_too_little_history_are_left_out_when_asked(panel):
    cutoffs = [panel.dates[10], panel.dates[40]]
    results = walk_forward(
        algorithm="seasonal_naive",
        hyperparameters={},
        panel=panel,
        cutoffs=cutoffs,
        training_days=30,
        min_training_days=14,
    )
    assert [result.start for result in results] == [cutoffs[1].date()]


def test_preparing_the_next_fit_in_the_background_changes_no_forecast(panel):
    cutoffs = weekly_cutoffs(panel.last_day, days=21)
    recipe = {**FAST_XGBOOST, "calibration_windows": 2}
    windows = walk_forward(
        algorithm="xgboost", hyperparameters=recipe, panel=panel, cutoffs=cutoffs
    )

    # The same fits in a session with no plan: every training matrix is built when asked for.
    with build_model("xgboost", **recipe).refit_session(panel) as session:
        for cutoff, window in zip(cutoffs, windows, strict=True):
            model = build_model("xgboost", **recipe).fit(panel.until(cutoff), session=session)
            forecasts = model.predict(panel, cutoff)
            np.testing.assert_array_equal(window.forecast, forecasts.values)
            np.testing.assert_array_equal(window.lower, forecasts.lower)


def test_without_a_promotion_calendar_no_forecast_sees_its_target_days_promotions(panel):
    cutoff = panel.dates[-14]
    promotions = panel.on_promotion.copy()
    promotions[:, panel.day_position(cutoff) :] = 1.0
    promoted = dataclasses.replace(panel, on_promotion=promotions)

    def forecast(data, *, promotions_known):
        (result,) = walk_forward(
            algorithm="xgboost",
            hyperparameters=FAST_XGBOOST,
            panel=data,
            cutoffs=[cutoff],
            promotions_known=promotions_known,
        )
        return result.forecast

    np.testing.assert_array_equal(
        forecast(panel, promotions_known=False), forecast(promoted, promotions_known=False)
    )
    assert not np.array_equal(
        forecast(panel, promotions_known=True), forecast(promoted, promotions_known=True)
    )


def _counted_training(monkeypatch, *, meet: int = 0, fail_at: int | None = None):
    """Wraps XGBoost's training: the first `meet` calls wait for each other (they fail unless
    that many train at once); the call numbered `fail_at` raises. Returns the call count."""
    from forecasting.families import xgboost_family

    train, lock, calls = xgboost_family.xgb.train, threading.Lock(), []
    barrier = threading.Barrier(meet, timeout=20) if meet else None

    def counted(*args, **kwargs):
        with lock:
            calls.append(threading.get_ident())
            number = len(calls)
        if barrier is not None and number <= meet:
            barrier.wait()
        if number == fail_at:
            raise RuntimeError("window failed")
        return train(*args, **kwargs)

    monkeypatch.setattr(xgboost_family.xgb, "train", counted)
    return calls


def test_two_refits_train_at_once_and_forecast_as_one_at_a_time_does(panel, monkeypatch):
    from forecasting.families import xgboost_family

    cutoffs = weekly_cutoffs(panel.last_day, days=28)
    recipe = {**FAST_XGBOOST, "calibration_windows": 1}

    def backtest(cores):
        monkeypatch.setattr(xgboost_family, "usable_cores", lambda: cores)
        return walk_forward(
            algorithm="xgboost", hyperparameters=recipe, panel=panel, cutoffs=cutoffs
        )

    alone = backtest(1)
    calls = _counted_training(monkeypatch, meet=2)
    together = backtest(2)

    assert len(set(calls)) == 2  # two threads trained, the first two fits at the same time
    for one, other in zip(alone, together, strict=True):
        assert one.cutoff == other.cutoff
        np.testing.assert_array_equal(one.forecast, other.forecast)
        np.testing.assert_array_equal(one.lower, other.lower)
        np.testing.assert_array_equal(one.upper, other.upper)
        assert one.metrics == other.metrics


def test_a_window_failing_among_fits_at_once_fails_the_walk_forward(panel, monkeypatch):
    from forecasting.families import xgboost_family

    monkeypatch.setattr(xgboost_family, "usable_cores", lambda: 2)
    calls = _counted_training(monkeypatch, fail_at=1)
    cutoffs = weekly_cutoffs(panel.last_day, days=42)
    with pytest.raises(RuntimeError, match="window failed"):
        walk_forward(
            algorithm="xgboost",
            hyperparameters={**FAST_XGBOOST, "calibration_windows": 0},
            panel=panel,
            cutoffs=cutoffs,
        )
    # The windows not started when it failed never trained.
    assert len(calls) < len(cutoffs)
