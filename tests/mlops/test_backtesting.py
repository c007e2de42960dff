"""The weekly walk-forward backtest of a version: hand-checked metrics, no leakage, segments."""

import datetime as dt
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from django.db.models import F
from django.utils import timezone

from alerts.models import MLAlert
from config.celery import app as celery_app
from forecasting.backtesting import weekly_cutoffs
from forecasting.models import Sale
from mlops.models import BacktestResult, ModelVersion, Trigger, WalkForwardRun
from mlops.selectors import get_backtest_trend
from mlops.services import retrain_forecast_model, run_continuous_backtest
from mlops.services.backtesting import check_backtest_degradation, walk_forward_windows
from mlops.tasks import backtest_version, weekly_backtest
from tests.mlops.factories import ModelVersionFactory, load_sales

# -- a small case checked by hand ---------------------------------------------------------------
#
# Three series, two weekly windows (cutoffs 2025-03-03 and 2025-03-10, last day 2025-03-16).
# Three weeks of history repeat the same week; seasonal naive forecasts each day with the sale
# seven days earlier, so window 1 forecasts the history week and window 2 forecasts window 1.
# Store S2 sends nothing on 2025-03-12: that point is unknown, not a zero.
FIRST_DAY = dt.date(2025, 2, 10)
CUTOFFS = (dt.date(2025, 3, 3), dt.date(2025, 3, 10))
LAST_DAY = dt.date(2025, 3, 16)
SERIES = {  # (store, product, department)
    "A": ("S1", "P1", "Grocery"),
    "B": ("S1", "P2", "Electronics"),
    "C": ("S2", "P1", "Grocery"),
}
HISTORY_WEEK = {
    "A": [5, 3, 4, 6, 8, 10, 2],
    "B": [0, 1, 0, 2, 1, 3, 0],
    "C": [7, 7, 6, 8, 9, 12, 5],
}
WEEK_1 = {
    "A": [6, 2, 4, 9, 7, 12, 1],
    "B": [1, 0, 0, 2, 0, 4, 1],
    "C": [7, 9, 5, 8, 11, 10, 6],
}
WEEK_2 = {
    "A": [4, 3, 5, 6, 10, 9, 3],
    "B": [0, 2, 1, 1, 2, 3, 0],
    "C": [8, 6, None, 9, 10, 14, 4],  # None: S2 did not report that day
}


def hand_case_frame() -> pd.DataFrame:
    rows = []
    weeks = [HISTORY_WEEK] * 3 + [WEEK_1, WEEK_2]
    for week_number, week in enumerate(weeks):
        for key, (store, product, department) in SERIES.items():
            for weekday, quantity in enumerate(week[key]):
                day = FIRST_DAY + dt.timedelta(days=7 * week_number + weekday)
                # B's zero days in week 1 are sent as no row at all: S1 reported other
                # products those days, so they are zeros all the same.
                if quantity is None or (week is WEEK_1 and key == "B" and quantity == 0):
                    continue
                rows.append(
                    {
                        "date": day,
                        "store": store,
                        "product": product,
                        "department": department,
                        "quantity": quantity,
                        "on_promotion": False,
                    }
                )
    return pd.DataFrame(rows)


def hand_metrics(actual: dict, forecast: dict, keys: list[str]) -> dict:
    """Each metric of DESIGN.md computed directly from the numbers (tolerance 1.2)."""
    pairs = [
        (y, f)
        for key in keys
        for y, f in zip(actual[key], forecast[key], strict=True)
        if y is not None
    ]
    n = len(pairs)
    sold = [(y, f) for y, f in pairs if y > 0]
    total = sum(y for y, _ in pairs)
    return {
        "mae": sum(abs(y - f) for y, f in pairs) / n,
        "mape": 100 * sum(abs(y - f) / y for y, f in sold) / len(sold),
        "wape": 100 * sum(abs(y - f) for y, f in pairs) / total,
        "bias": 100 * sum(f - y for y, f in pairs) / total,
        "stockout_miss_rate": sum(1 for y, f in pairs if np.ceil(f) < y) / n,
        "overstock_rate": sum(1 for y, f in pairs if f - y >= 1 and f > y * 1.2) / n,
        "n_points": n,
    }


@pytest.fixture
def hand_case():
    load_sales(hand_case_frame())
    return ModelVersionFactory(
        algorithm="seasonal_naive",
        hyperparameters={"calibration_windows": 0},
        training_start=dt.date(2024, 12, 1),
        training_end=dt.date(2024, 12, 28),  # a 28-day training window
        status=ModelVersion.Status.CHAMPION,
    )


def test_walk_forward_metrics_match_the_hand_checked_case(hand_case):
    results = run_continuous_backtest(version=hand_case, days=14, window=7)

    assert [(r.window_start, r.window_end) for r in results] == [
        (CUTOFFS[0], dt.date(2025, 3, 9)),
        (CUTOFFS[1], LAST_DAY),
    ]
    first, second = results
    # Window 1: |error| per series A 1+1+0+3+1+2+1, B 1+1+0+0+1+1+1, C 0+2+1+0+2+2+1.
    assert first.mae == 22 / 21
    # Window 2: A 2+1+1+3+3+3+2 = 15, B 1+2+1+1+2+1+1 = 9, C 1+3+(unknown)+1+1+4+2 = 12,
    # over the 20 known points.
    assert second.mae == 36 / 20
    assert (first.n_points, first.n_missing) == (21, 0)
    assert (second.n_points, second.n_missing) == (20, 1)
    every = ["A", "B", "C"]
    for row, actual, forecast in (
        (first, WEEK_1, HISTORY_WEEK),
        (second, WEEK_2, WEEK_1),
    ):
        expected = hand_metrics(actual, forecast, every)
        for name, value in expected.items():
            assert getattr(row, name) == pytest.approx(value, rel=1e-12), name
        assert row.coverage == 1.0
        assert row.interval_coverage is None  # the recipe calibrates no intervals
        grocery = hand_metrics(actual, forecast, ["A", "C"])
        electronics = hand_metrics(actual, forecast, ["B"])
        assert set(row.department_metrics) == {"Grocery", "Electronics"}
        for department, values in (("Grocery", grocery), ("Electronics", electronics)):
            for name, value in values.items():
                stored = row.department_metrics[department][name]
                assert stored == pytest.approx(value, rel=1e-12), (department, name)


def test_rerunning_the_walk_forward_replaces_its_windows(hand_case):
    run_continuous_backtest(version=hand_case, days=14, window=7)
    Sale.objects.filter(date__gte=CUTOFFS[1]).update(quantity=0)

    results = run_continuous_backtest(version=hand_case, days=14, window=7)

    stored = BacktestResult.objects.filter(model_version=hand_case, kind="walk_forward")
    assert stored.count() == 2
    # Window 2 now sold nothing: its error is the forecast (week 1's sales) of its 20 known
    # points, A 41 + B 8 + C 56 less the unknown day's 5.
    assert stored.get(window_start=CUTOFFS[1]).mae == results[1].mae == 100 / 20
    assert stored.get(window_start=CUTOFFS[0]).mae == 22 / 21


def test_backtest_trend_lists_each_window_with_its_metrics_oldest_first(hand_case):
    run_continuous_backtest(version=hand_case, days=14, window=7)

    trend = get_backtest_trend(version=hand_case, days=90)

    assert [row["window_start"] for row in trend] == list(CUTOFFS)
    assert trend[0]["mae"] == 22 / 21 and trend[1]["n_points"] == 20
    assert set(trend[0]) >= {
        "window_start",
        "window_end",
        "mae",
        "mape",
        "wape",
        "bias",
        "stockout_miss_rate",
        "overstock_rate",
        "interval_coverage",
        "n_points",
    }
    assert [row["window_start"] for row in get_backtest_trend(version=hand_case, days=7)] == [
        CUTOFFS[1]
    ]
    assert get_backtest_trend(version=hand_case, kind="t_minus_1") == []


# -- generated sales -----------------------------------------------------------------------------


@pytest.fixture
def xgboost_version(sales):
    """A small XGBoost recipe with a 120-day training window (the walk-forward needs no
    artifact: it refits the recipe)."""
    return ModelVersionFactory(
        algorithm="xgboost",
        hyperparameters={"n_estimators": 15, "max_depth": 3, "calibration_windows": 1},
        training_start=dt.date(2025, 5, 1),
        training_end=dt.date(2025, 8, 28),
        status=ModelVersion.Status.CHAMPION,
    )


def test_sales_on_or_after_a_cutoff_never_change_that_windows_forecasts(xgboost_version):
    cutoffs = weekly_cutoffs(Sale.objects.latest("date").date, days=21, window=7)
    silent_day = cutoffs[1] + dt.timedelta(days=2)
    silent_store = Sale.objects.order_by("store_id").values_list("store_id", flat=True)[0]
    before = walk_forward_windows(version=xgboost_version, days=21, window=7)
    assert [w.cutoff for w in before] == cutoffs

    # The future changes completely: more sales everywhere, every product on promotion (the
    # daily forecast has no promotion calendar, so neither do the backtests), and the store
    # sends nothing.
    Sale.objects.filter(date__gte=cutoffs[1]).update(
        quantity=F("quantity") * 3 + 1, on_promotion=True
    )
    Sale.objects.filter(store_id=silent_store, date=silent_day).delete()
    after = walk_forward_windows(version=xgboost_version, days=21, window=7)

    assert [w.cutoff for w in after] == [w.cutoff for w in before]
    for old, new in zip(before[:2], after[:2], strict=True):
        np.testing.assert_array_equal(old.forecast, new.forecast)
        np.testing.assert_array_equal(old.lower, new.lower)
        np.testing.assert_array_equal(old.upper, new.upper)
    assert after[0].metrics == before[0].metrics
    # The changed days are scored (window 2) and learned from (window 3): the test can tell.
    assert after[1].metrics["mae"] != before[1].metrics["mae"]
    assert after[1].metrics["n_missing"] > before[1].metrics["n_missing"]
    assert not np.array_equal(after[2].forecast, before[2].forecast)


def test_segment_version_backtests_only_its_departments_series(sales):
    version = retrain_forecast_model(
        trigger=Trigger.MANUAL,
        segment="department:Electronics",
        algorithm="seasonal_naive",
        window_days=60,
        evaluation_windows=1,
    ).resulting_version

    results = run_continuous_backtest(version=version, days=21, window=7)

    electronics = sales.loc[sales["department"] == "Electronics", ["store", "product"]]
    n_series = len(electronics.drop_duplicates())
    assert len(results) == 3
    for row in results:
        assert set(row.department_metrics) == {"Electronics"}
        assert row.n_points + row.n_missing == n_series * 7


# -- the weekly job --------------------------------------------------------------------------------


def test_weekly_backtest_job_walks_every_champion_and_challenger_of_another_recipe_forward(
    hand_case, monkeypatch
):
    challenger = ModelVersionFactory(
        algorithm="seasonal_naive",
        hyperparameters={"calibration_windows": 0},
        status=ModelVersion.Status.CHALLENGER,
    )
    # The champion's recipe retrained (after drift, say): its walk-forward would be the
    # champion's, window for window.
    ModelVersionFactory(
        algorithm="seasonal_naive",
        hyperparameters={"calibration_windows": 0},
        window_days=28,
        status=ModelVersion.Status.CHALLENGER,
    )
    ModelVersionFactory(status=ModelVersion.Status.ARCHIVED)
    ModelVersionFactory(status=ModelVersion.Status.CANDIDATE)

    with mock.patch.object(backtest_version, "delay") as queued:
        version_ids = weekly_backtest()

    assert sorted(version_ids) == sorted([hand_case.pk, challenger.pk])
    assert sorted(call.args[0] for call in queued.call_args_list) == sorted(version_ids)

    # Its windows and the task storing them run here, one after the other (as a lone worker).
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    asked = timezone.now().isoformat()
    summary = backtest_version.delay(hand_case.pk, requested_at=asked).get()
    again = backtest_version.delay(hand_case.pk, requested_at=asked).get()

    # 90 days asked: 13 windows, but only those with two weeks of sales before them are
    # stored: 2025-02-24 (a perfect week), then the two hand-checked ones.
    assert summary["windows"] == 13
    assert again == {"version": hand_case.pk, "windows": 0, "skipped": "already run"}
    run = WalkForwardRun.objects.get(model_version=hand_case)
    assert run.status == WalkForwardRun.Status.SUCCEEDED
    assert run.windows.filter(skipped=False).count() == 3
    assert BacktestResult.objects.filter(model_version=hand_case).count() == 3
    # Window 2's MAE (1.8) is 72% above window 1's (22/21): a warning, raised once.
    alert = MLAlert.objects.get(alert_type="backtest_degradation")
    assert alert.occurrences == 1
    assert alert.metadata["change_pct"] == pytest.approx(100 * (1.8 / (22 / 21) - 1), abs=0.01)


def test_a_refreshed_champions_degradation_updates_its_segments_open_warning(hand_case):
    run_continuous_backtest(version=hand_case, days=14, window=7)
    first = check_backtest_degradation(version=hand_case)
    # The weekly refresh replaces it.
    ModelVersion.objects.filter(pk=hand_case.pk).update(status=ModelVersion.Status.ARCHIVED)
    refresh = ModelVersionFactory(
        algorithm="seasonal_naive",
        hyperparameters={"calibration_windows": 0},
        window_days=28,
        status=ModelVersion.Status.CHAMPION,
    )
    run_continuous_backtest(version=refresh, days=14, window=7)

    again = check_backtest_degradation(version=refresh)

    assert again.pk == first.pk
    assert MLAlert.objects.filter(alert_type="backtest_degradation").count() == 1
    assert (again.occurrences, again.metadata["version"]) == (2, refresh.version)
    assert refresh.version in again.title
