"""A person's pause racing the daily canary judging (delivered several times at once) on the
same plan: the plan ends consistent, with one judgement of the day and one pause recorded."""

import datetime as dt
import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from forecasting.models import Forecast, Product, Sale, Store
from mlops.models import ModelVersion, RolloutEvent, RolloutPlan
from mlops.services.rollout_judging import judge_canary
from mlops.services.rollouts import act_on_rollout, start_canary
from tests.mlops.factories import ModelVersionFactory, UserFactory

DAY = dt.date(2026, 3, 2)
JUDGED = DAY + dt.timedelta(days=1)
DELIVERIES = 5


def judged_day_with_forecasts(plan: RolloutPlan, champion: ModelVersion) -> None:
    """The canary served its series on JUDGED and the champion the rest; both forecast every
    series as it sold, so no guardrail moves."""
    canary = set(plan.series.values_list("store_id", "product_id"))
    rows = []
    for store_id, product_id in Sale.objects.filter(date=JUDGED).values_list(
        "store_id", "product_id"
    ):
        mine = (store_id, product_id) in canary
        base = {
            "store_id": store_id,
            "product_id": product_id,
            "made_on": JUDGED,
            "target_date": JUDGED,
            "value": 4.0,
            "lower": 2.0,
            "upper": 6.0,
        }
        rows.append(Forecast(model_version=champion, served=not mine, **base))
        if mine:
            rows.append(Forecast(model_version=plan.version, served=True, **base))
    Forecast.objects.bulk_create(rows)


@pytest.mark.django_db(transaction=True)
def test_a_pause_racing_the_daily_judging_leaves_one_decision_and_a_consistent_plan(tenant):
    UserFactory(username="manager", role="ml_manager")
    champion = ModelVersionFactory(status=ModelVersion.Status.CHAMPION)
    stores = [Store.objects.create(code=f"S{i}") for i in range(10)]
    products = [Product.objects.create(sku=f"P{i}", department="Grocery") for i in range(10)]
    Sale.objects.bulk_create(
        Sale(store=s, product=p, date=day, quantity=4)
        for s in stores
        for p in products
        for day in (DAY - dt.timedelta(days=1), JUDGED)
    )
    plan = start_canary(
        version=ModelVersionFactory(),
        actor=None,
        reason="race",
        initial_share=0.2,
        steps=[0.5, 1.0],
        bake_days=1,
        on=DAY,
    )
    judged_day_with_forecasts(plan, champion)
    barrier = threading.Barrier(DELIVERIES + 1)
    outcomes: list[str] = [""] * (DELIVERIES + 1)

    def worker(index: int) -> None:
        try:
            connection.set_tenant(tenant)
            barrier.wait(timeout=30)
            if index == 0:
                manager = get_user_model().objects.get(username="manager")
                act_on_rollout(plan=plan, action="pause", actor=manager, reason="hold on")
                outcomes[index] = "paused"
            else:
                decision = judge_canary(plan_id=plan.pk, day=JUDGED)
                outcomes[index] = decision.outcome if decision else "already judged"
        except Exception as error:  # any failure is what the test must catch
            outcomes[index] = f"error: {error!r}"
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(DELIVERIES + 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not any(thread.is_alive() for thread in threads), "a move hung (deadlock?)"
    assert outcomes[0] == "paused", outcomes
    decisions = [each for each in outcomes[1:] if each != "already judged"]
    assert len(decisions) == 1 and decisions[0] in ("advance", "hold"), outcomes
    plan = RolloutPlan.objects.select_related("version").get(pk=plan.pk)
    assert plan.status == RolloutPlan.Status.PAUSED
    assert plan.events.filter(day=JUDGED).count() == 1
    assert plan.events.filter(kind=RolloutEvent.Kind.PAUSED).count() == 1
    if decisions[0] == "advance":  # judged first, then paused at the next step
        assert plan.step == 1 and plan.days_baked == 0
    else:  # paused first: the baked day is kept, the step waits for a resume
        assert plan.step == 0 and plan.days_baked == 1
    assert plan.version.canary_weight == plan.share
    assert plan.series.count() == round(plan.share * 100)
