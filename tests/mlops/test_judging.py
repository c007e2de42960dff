"""The daily judging: challengers weighed every day on the forecasts stored for them and the
champion, for all series; an automatic recipe change that clears the gate on enough days serves,
a version waiting for a person gets one review alert, rewritten in place."""

import datetime as dt

import pytest

from alerts.models import MLAlert
from forecasting.families import build_model
from mlops.health_selectors import model_health
from mlops.models import DecisionKind, ModelVersion, Trigger
from mlops.selectors import get_champion_model
from mlops.services import (
    backtest_yesterday,
    forecast_next_days,
    make_challenger,
    register_model_version,
    retrain_forecast_model,
)
from mlops.services.data import load_panel
from mlops.services.judging import judge_waiting_versions
from tenants.selectors import tenant_policy
from tests.mlops.conftest import QUICK_XGBOOST
from tests.mlops.factories import load_sales

Status = ModelVersion.Status
JUDGED_DAYS = 9


@pytest.fixture
def arena(sales_frame):
    """A seasonal-naive champion and an XGBoost version, both trained on the sales up to
    JUDGED_DAYS days before the last; the last days' sales still to come."""
    dates = sales_frame["date"].dt.date
    cutoff = dates.max() - dt.timedelta(days=JUDGED_DAYS)
    load_sales(sales_frame[dates <= cutoff])
    champion = retrain_forecast_model(
        trigger=Trigger.MANUAL, algorithm="seasonal_naive", window_days=120
    ).resulting_version
    panel = load_panel(start=cutoff - dt.timedelta(days=119), end=cutoff)
    better = register_model_version(
        algorithm="xgboost",
        model=build_model("xgboost", **QUICK_XGBOOST).fit(panel),
        training_start=panel.first_day.date(),
        training_end=cutoff,
        training_rows=int(panel.quantity.size),
        trigger=Trigger.SCHEDULED,
        window_days=120,
    )
    return {"champion": champion, "better": better, "frame": sales_frame, "cutoff": cutoff}


def run_days(arena, days: int) -> list:
    """The schedules' days: the morning forecast, the day's sales, its T-1 and judging."""
    frame, judged = arena["frame"], []
    dates = frame["date"].dt.date
    for offset in range(1, days + 1):
        day = arena["cutoff"] + dt.timedelta(days=offset)
        forecast_next_days(day=day)
        load_sales(frame[dates == day])
        backtest_yesterday(day=day)
        judged.append(judge_waiting_versions(day=day))
    return judged


def test_an_automatic_recipe_change_is_promoted_once_it_clears_the_gate_on_enough_days(arena):
    better = make_challenger(version=arena["better"], actor=None, reason="kept to gather evidence")
    ModelVersion.objects.filter(pk=better.pk).update(decision_kind=DecisionKind.RECIPE_CHANGE)
    required = tenant_policy().min_shadow_days

    judged = run_days(arena, JUDGED_DAYS)

    days_seen = [day[0].days for day in judged if day]
    assert days_seen[: required - 1] == list(range(1, required))  # one more day each morning
    promoted_on = next(i for i, day in enumerate(judged) if day and day[0].action == "promoted")
    assert promoted_on == required - 1  # as soon as it has `min_shadow_days` days
    assert get_champion_model() == ModelVersion.objects.get(pk=better.pk)
    move = better.transitions.get(to_status=Status.CHAMPION)
    assert move.actor is None and move.evidence["kind"] == "recipe_change"
    assert move.evidence["source"] == "shadow" and move.evidence["window"]["days"] == required
    assert move.evidence["improvement"]["mae_pct"] >= 5
    assert move.evidence["test"]["confidence"] >= 0.95


def test_a_version_waiting_for_a_person_is_flagged_once_and_never_promoted(arena):
    ModelVersion.objects.filter(pk=arena["better"].pk).update(trigger=Trigger.DRIFT_DETECTED)
    waiting = make_challenger(version=arena["better"], actor=None, reason="drift retrain")

    run_days(arena, JUDGED_DAYS)

    assert get_champion_model() == arena["champion"]
    (alert,) = MLAlert.objects.filter(alert_type="promotion_pending")
    assert alert.model_version_id == waiting.pk
    assert alert.occurrences == 1  # rewritten in place each day, never raised twice
    assert alert.metadata["evidence_days"] == JUDGED_DAYS  # with the latest day's numbers
    assert "better" in alert.title and "-" not in alert.title.split("(MAE")[1]
    # Health shows today's numbers, the daily judging's.
    (entry,) = model_health()
    standing = entry["challenger"]
    assert standing["evidence_source"] == "shadow" and standing["evidence_days"] == JUDGED_DAYS
    assert standing["promotion_eligible"] is True and standing["confidence"] >= 0.95
    assert standing["mae_7d"] is not None


def test_until_it_has_enough_days_a_challenger_has_no_verdict(arena):
    waiting = make_challenger(version=arena["better"], actor=None, reason="kept")
    ModelVersion.objects.filter(pk=waiting.pk).update(decision_kind=DecisionKind.RECIPE_CHANGE)

    run_days(arena, 2)

    waiting.refresh_from_db()
    assert waiting.last_evaluation["ready"] is False
    assert waiting.last_evaluation["promote"] is False
    assert "2 of 7 day(s)" in waiting.last_evaluation["reason"]
    assert get_champion_model() == arena["champion"]
