"""Canary rollouts run day by day as the schedules run them: the morning forecast, the T-1
backtest and the canary judging of the day before, then the day's sales. A bad canary is rolled
back automatically; a better one walks every step and is promoted."""

import datetime as dt

import numpy as np
import pytest
from django.db.models import F

from alerts.models import MLAlert
from forecasting.families import build_model
from forecasting.models import Forecast, Product
from mlops.health_selectors import model_health
from mlops.models import ModelVersion, RolloutEvent, RolloutPlan, Trigger
from mlops.selectors import get_champion_model
from mlops.services import (
    backtest_yesterday,
    forecast_next_days,
    promote_to_champion,
    register_model_version,
)
from mlops.services.data import load_panel
from mlops.services.retraining import retrain_forecast_model
from mlops.services.rollout_judging import judge_canaries
from mlops.services.rollouts import start_canary
from tests.mlops.conftest import QUICK_XGBOOST
from tests.mlops.factories import load_sales

Status = ModelVersion.Status
PlanStatus = RolloutPlan.Status
# 288 series (a third or so per department): 10% holds ten or more series of each department.
# The judged days are in late September, away from the holidays that move demand.
ROLLOUT_SALES = {
    "stores": 12,
    "products": 24,
    "days": 160,
    "seed": 11,
    "end_date": dt.date(2025, 9, 30),
}
DAYS_AHEAD = 8


@pytest.fixture(scope="module")
def rollout_frame():
    from forecasting.synthetic import generate_sales

    return generate_sales(**ROLLOUT_SALES)


@pytest.fixture
def arena(rollout_frame):
    """A seasonal-naive champion trained on the sales up to DAYS_AHEAD days before the last."""
    dates = rollout_frame["date"].dt.date
    cutoff = dates.max() - dt.timedelta(days=DAYS_AHEAD)
    load_sales(rollout_frame[dates <= cutoff])
    champion = retrain_forecast_model(
        trigger=Trigger.MANUAL, algorithm="seasonal_naive", window_days=120
    ).resulting_version
    panel = load_panel(start=cutoff - dt.timedelta(days=119), end=cutoff)
    return {"champion": champion, "frame": rollout_frame, "cutoff": cutoff, "panel": panel}


def register(arena, algorithm: str, **hyperparameters) -> ModelVersion:
    panel = arena["panel"]
    return register_model_version(
        algorithm=algorithm,
        model=build_model(algorithm, **hyperparameters).fit(panel),
        training_start=panel.first_day.date(),
        training_end=arena["cutoff"],
        training_rows=int(panel.quantity.size),
        trigger=Trigger.MANUAL,
        window_days=120,
    )


def scale_grocery(version: ModelVersion, morning: dt.date, factor: float) -> None:
    """What a candidate that over-forecasts Grocery stores: its Grocery forecasts x factor."""
    grocery = Product.objects.filter(department="Grocery").values("pk")
    made = Forecast.objects.filter(model_version=version, made_on=morning)
    made.filter(product__in=grocery).update(
        value=F("value") * factor, lower=F("lower") * factor, upper=F("upper") * factor
    )


def blur(version: ModelVersion, morning: dt.date, *, sigma: float) -> None:
    """What a noisier model stores: each of its forecasts times e^N(-sigma^2 / 2, sigma), a
    factor of mean 1."""
    rows = Forecast.objects.filter(model_version=version, made_on=morning).order_by("pk")
    rng = np.random.default_rng(morning.toordinal())
    updated = []
    for row, factor in zip(
        rows, rng.lognormal(-(sigma**2) / 2, sigma, size=rows.count()), strict=True
    ):
        row.value *= float(factor)
        updated.append(row)
    Forecast.objects.bulk_update(updated, ["value"], batch_size=2000)


def run_mornings(arena, mornings: int, *, after_forecast=None, stop=None) -> list:
    """Each morning: the 05:00 forecast, the 06:00 T-1 backtest and the 06:30 canary judging
    of the day before; then the day's sales arrive. Returns each morning's decisions."""
    frame, decided = arena["frame"], []
    dates = frame["date"].dt.date
    for offset in range(1, mornings + 1):
        morning = arena["cutoff"] + dt.timedelta(days=offset)
        forecast_next_days(day=morning)
        if after_forecast is not None:
            after_forecast(morning)
        yesterday = morning - dt.timedelta(days=1)
        backtest_yesterday(day=yesterday)
        decided.append(judge_canaries(day=yesterday))
        load_sales(frame[dates == morning])
        if stop is not None and stop():
            break
    return decided


def served_series(version: ModelVersion) -> set[tuple[int, int]]:
    rows = Forecast.objects.filter(model_version=version, served=True)
    return set(rows.values_list("store_id", "product_id"))


def test_a_candidate_over_forecasting_grocery_is_rolled_back_within_two_days(arena, manager):
    # The champion and the candidate are one recipe; the candidate's Grocery forecasts are x1.3.
    # (A seasonal-naive champion can run low enough on a tenth of Grocery that x1.3 of it is
    # no worse there: the canary's series, chosen by the series' codes, decide.)
    champion = register(arena, "xgboost", **QUICK_XGBOOST)
    promote_to_champion(version=champion, actor=None, reason="the champion of this story")
    bad = register(arena, "xgboost", **QUICK_XGBOOST)
    plan = start_canary(
        version=bad,
        actor=manager,
        reason="try the new recipe on a tenth of the series",
        initial_share=0.1,
        steps=[0.25, 0.5, 1.0],
        bake_days=2,
        on=arena["cutoff"],
    )
    canary = set(plan.series.values_list("store_id", "product_id"))

    decided = run_mornings(
        arena,
        4,
        after_forecast=lambda morning: scale_grocery(bad, morning, 1.3),
        stop=lambda: RolloutPlan.objects.get(pk=plan.pk).status != PlanStatus.RUNNING,
    )

    plan.refresh_from_db()
    assert plan.status == PlanStatus.ROLLED_BACK
    # Rolled back on the judging of its first or second served day.
    outcomes = [each.outcome for day in decided for each in day]
    assert outcomes in (["rollback"], ["hold", "rollback"]), outcomes
    assert plan.last_evaluated_on - plan.started_on <= dt.timedelta(days=2)
    # Only the canary's series were ever served by it; the champion's forecasts of them were
    # stored beside as shadows (not served), which is what the guardrails compared.
    assert served_series(bad) == canary
    shadows = Forecast.objects.filter(model_version=champion, served=False)
    assert set(shadows.values_list("store_id", "product_id")) == canary
    assert len(canary) == plan.series.count() > 0
    bad.refresh_from_db()
    assert bad.status == Status.CHALLENGER
    assert (bad.routing_mode, bad.canary_weight) == (ModelVersion.RoutingMode.NONE, 0.0)
    # The next morning the champion serves every series again.
    morning = arena["cutoff"] + dt.timedelta(days=len(decided) + 1)
    forecast_next_days(day=morning)
    assert not Forecast.objects.filter(model_version=bad, made_on=morning, served=True).exists()
    # One alert, naming the breached guardrail and its numbers.
    alerts = MLAlert.objects.filter(alert_type=MLAlert.AlertType.CANARY_ROLLED_BACK)
    assert alerts.count() == 1
    alert = alerts.get()
    breaches = alert.metadata["breaches"]
    assert breaches and all(each["breached"] for each in breaches)
    assert any(each["scope"] == "department:Grocery" for each in breaches)
    first = breaches[0]
    assert first["metric"] in alert.title and first["scope"] in alert.title
    assert first["worse_by"] > first["tolerance"]
    assert first["confidence"] >= first["required_confidence"] > plan.confidence
    assert "worse by" in alert.message and "confidence" in alert.message
    event = plan.events.get(kind=RolloutEvent.Kind.ROLLED_BACK)
    assert event.actor is None and event.evidence["breaches"] == breaches


def test_a_better_candidate_walks_every_step_and_is_promoted_after_the_last_bake(arena, manager):
    # The champion serves the candidate's own forecasts blurred by noise of mean 1 (x e^N per
    # point, sigma 0.4): in expectation worse on every guardrail, and better on none.
    weak = register(arena, "xgboost", **QUICK_XGBOOST)
    promote_to_champion(version=weak, actor=None, reason="the champion of this story")
    better = register(arena, "xgboost", **QUICK_XGBOOST)
    plan = start_canary(
        version=better,
        actor=manager,
        reason="xgboost beat seasonal naive in the backtests",
        initial_share=0.1,
        steps=[0.5, 1.0],
        bake_days=1,
        on=arena["cutoff"],
    )

    decided = run_mornings(
        arena,
        DAYS_AHEAD,
        after_forecast=lambda morning: blur(weak, morning, sigma=0.4),
        stop=lambda: RolloutPlan.objects.get(pk=plan.pk).status != PlanStatus.RUNNING,
    )

    plan.refresh_from_db()
    outcomes = [each.outcome for day in decided for each in day]
    assert plan.status == PlanStatus.PROMOTED, (outcomes, plan.latest.get("breaches"))
    # A step's bake counts the days served after it started (the morning of its start was
    # forecast at the share before): advance, hold, advance, hold, promote.
    assert outcomes == ["advance", "hold", "advance", "hold", "promote"]
    assert get_champion_model() == ModelVersion.objects.get(pk=better.pk)
    assert ModelVersion.objects.get(pk=weak.pk).status == Status.ARCHIVED
    # The evidence of every step is in the plan's log, and the promotion in the registry's.
    events = list(plan.events.order_by("pk"))
    assert [e.kind for e in events] == [
        "started",
        "advanced",
        "judged",
        "advanced",
        "judged",
        "promoted",
    ]
    for event in events[1:]:
        guardrails = event.evidence["guardrails"]
        assert {g["metric"] for g in guardrails} == {r["metric"] for r in plan.guardrails}
        assert not any(g["breached"] for g in guardrails)
        assert event.evidence["series"] > 0 and event.day is not None
    assert [e.share for e in events] == [0.1, 0.5, 0.5, 1.0, 1.0, 1.0]
    move = better.transitions.get(to_status=Status.CHAMPION)
    assert move.actor is None and move.evidence["rollout_plan"] == plan.pk
    # Health shows no canary any more: it ended.
    assert model_health()[0]["canary"] is None


def test_a_running_canary_shows_its_step_and_guardrails_in_model_health(arena, manager):
    candidate = register(arena, "seasonal_naive")
    start_canary(
        version=candidate,
        actor=manager,
        reason="watch it",
        initial_share=0.2,
        steps=[1.0],
        bake_days=3,
        on=arena["cutoff"],
    )

    run_mornings(arena, 2)

    canary = model_health()[0]["canary"]
    assert canary["version"] == candidate.version and canary["status"] == "running"
    assert (canary["step"], canary["steps"], canary["share"]) == (1, 2, 0.2)
    assert canary["days_baked"] == 1 and canary["last_outcome"] == "hold"
    # Identical forecasts: every guardrail holds at zero difference.
    values = canary["guardrail_values"]
    assert len(values) == 5 and all(np.isclose(row["worse_by"], 0.0) for row in values)
