"""Replaying operations (`replay_operations`): the sandbox learns each plan of the tenant's
promotion calendar when the tenant did, never earlier, and starts from the tenant's champions as
they serve, overrides included."""

import datetime as dt

import pandas as pd
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_tenants.utils import get_public_schema_name, schema_context, tenant_context

from forecasting.families import FAMILIES
from forecasting.families.seasonal_naive import SeasonalNaiveModel
from forecasting.models import PlannedPromotion
from forecasting.services import import_promotion_calendar
from forecasting.synthetic import generate_sales
from mlops.models import DecisionKind, ModelRetrainingLog, ModelVersion, Trigger
from mlops.services.replay import ReplayPlan, run_replay, sandbox_slug
from tenants.models import Tenant
from tests.mlops.factories import ModelVersionFactory, load_sales

START = dt.date(2026, 3, 3)  # a Tuesday: no weekly job in the three replayed days
END = START + dt.timedelta(days=2)


def _utc(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_replay_adds_each_plan_of_the_calendar_when_the_tenant_knew_it(tenant):
    sales = generate_sales(stores=2, products=6, days=200, seed=3, end_date=END)
    load_sales(sales)
    product = sales["product"].iloc[0]
    plans = pd.DataFrame(
        {
            "store": ["", "", ""],
            "product": [product] * 3,
            "start_date": [END + dt.timedelta(days=n) for n in (3, 10, 20)],
            "end_date": [END + dt.timedelta(days=n) for n in (5, 12, 22)],
            # Known before the replay, during its second day, and after its end.
            "known_since": [
                _utc(START - dt.timedelta(days=20), 8),
                _utc(START, 15),
                _utc(END + dt.timedelta(days=1), 12),
            ],
        }
    )
    with _fixed_now(END + dt.timedelta(days=2)):
        import_promotion_calendar(source=plans)

    with schema_context(get_public_schema_name()):
        plan = ReplayPlan(source=tenant, start=START, end=END)
        sandbox = None
        try:
            run_replay(plan)
            sandbox = Tenant.objects.get(slug=sandbox_slug(tenant))
            with tenant_context(sandbox):
                added = list(PlannedPromotion.objects.order_by("known_since"))
        finally:
            sandbox = Tenant.objects.filter(slug=sandbox_slug(tenant)).first()
            if sandbox is not None:
                sandbox.delete(force_drop=True)

    # The plan made after the replayed days never reaches the sandbox.
    assert [row.known_since for row in added] == list(plans["known_since"][:2])
    first, second = added
    # Each arrived after it was known, and before the next morning's jobs (the first at 02:00
    # in the tenant's Europe/Berlin).
    assert first.created_at < _utc(START, 0)
    assert _utc(START, 15) <= second.created_at < _utc(START + dt.timedelta(days=1), 0)


def _fixed_now(day: dt.date):
    import time_machine

    return time_machine.travel(_utc(day, 12), tick=False)


@pytest.mark.django_db(transaction=True)
def test_a_calendar_file_without_known_since_is_refused_by_the_replay(tenant, tmp_path):
    path = tmp_path / "calendar.csv"
    path.write_text("store,product,start_date,end_date\n,P1,2026-03-04,2026-03-05\n")
    with (
        schema_context(get_public_schema_name()),
        pytest.raises(CommandError, match="known_since"),
    ):
        call_command(
            "replay_operations",
            "--tenant",
            tenant.slug,
            "--start",
            str(START),
            "--end",
            str(END),
            "--calendar",
            str(path),
            "--report",
            str(tmp_path / "report.json"),
        )


class TripledNaiveModel(SeasonalNaiveModel):
    """Seasonal naive x 3: a recipe no gate supports."""

    algorithm = "seasonal_naive_x3"

    def _predict_point(self, *, history, future_promotion, dates):
        return 3 * super()._predict_point(
            history=history, future_promotion=future_promotion, dates=dates
        )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_replay_starts_from_the_champions_as_they_serve_even_one_adopted_against_the_gate(
    tenant, monkeypatch
):
    # Wednesday to Saturday: the weekly jobs run on the morning after, which the report shows
    # too. The champions, four days old then, are refreshed: they would be eleven days old by
    # the next Sunday (the source's schedule; the sandbox's own rows are disabled).
    saturday = dt.date(2026, 3, 7)
    monkeypatch.setitem(FAMILIES, TripledNaiveModel.algorithm, TripledNaiveModel)
    sales = generate_sales(stores=2, products=6, days=200, seed=3, end_date=saturday)
    load_sales(sales)
    department = f"department:{sales['department'].iloc[0]}"
    ModelVersionFactory(
        version_number=1, status=ModelVersion.Status.CHAMPION, algorithm="seasonal_naive"
    )
    ModelVersionFactory(
        version_number=2,
        segment=department,
        status=ModelVersion.Status.CHAMPION,
        algorithm=TripledNaiveModel.algorithm,
        window_days=56,
        decision_kind=DecisionKind.OVERRIDE,
    )

    with schema_context(get_public_schema_name()):
        try:
            report = run_replay(
                ReplayPlan(
                    source=tenant,
                    start=saturday - dt.timedelta(days=3),
                    end=saturday,
                )
            )
            with tenant_context(Tenant.objects.get(slug=sandbox_slug(tenant))):
                # The replay's start trains each recipe (trigger manual); the refreshes follow.
                logs = {
                    log.segment: log
                    for log in ModelRetrainingLog.objects.filter(
                        trigger=Trigger.MANUAL
                    ).select_related("resulting_version")
                }
                champions = {segment: log.resulting_version for segment, log in logs.items()}
        finally:
            sandbox = Tenant.objects.filter(slug=sandbox_slug(tenant)).first()
            if sandbox is not None:
                sandbox.delete(force_drop=True)

    assert {segment: v.algorithm for segment, v in champions.items()} == {
        "global": "seasonal_naive",
        department: TripledNaiveModel.algorithm,
    }
    # The gate rejected the tripled recipe on the sandbox's history; it serves anyway, as in the
    # source, and says so: an override, with the gate's verdict beside the reason.
    adopted = logs[department].decision
    assert champions[department].decision_kind == DecisionKind.OVERRIDE
    assert adopted["action"] == "promote"
    assert adopted["promote"] is False
    assert adopted["reasons"][0] == (
        f"Replay start: v2 serves demand_forecast [{department}] in {tenant.slug} (adopted "
        "there by override), so its recipe serves here although the gate does not support it "
        "on this history."
    )
    assert "worse" in adopted["reasons"][1]
    assert champions["global"].decision_kind == DecisionKind.FIRST_MODEL
    served = [(s["segment"], s["champion"]) for s in report["days"][0]["segments"]]
    assert served == [("global", champions["global"].version), (department, "v2")]

    # Sunday morning's weekly retrain refreshed both champions (one, at least, replaced its
    # champion): reported on the morning after the last day, its promotions in the summary.
    after = report["morning_after"]
    assert after["date"] == (saturday + dt.timedelta(days=1)).isoformat()
    assert sorted(r["segment"] for r in after["retrains"]) == [department, "global"]
    assert {r["kind"] for r in after["retrains"]} == {DecisionKind.REFRESH}
    promoted = sorted(r["version"] for r in after["retrains"] if r["outcome"] == "promoted")
    assert promoted
    assert sorted(p["version"] for p in after["promotions"]) == promoted
    assert sorted(p["version"] for p in report["summary"]["promotions"]) == promoted
    assert report["summary"]["days"] == 4
