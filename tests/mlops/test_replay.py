"""Replaying operations (`replay_operations`) on a tenant that keeps a promotion calendar: the
sandbox learns each plan when the tenant did, never earlier."""

import datetime as dt

import pandas as pd
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_tenants.utils import get_public_schema_name, schema_context, tenant_context

from forecasting.models import PlannedPromotion
from forecasting.services import import_promotion_calendar
from forecasting.synthetic import generate_sales
from mlops.services.replay import ReplayPlan, run_replay, sandbox_slug
from tenants.models import Tenant
from tests.mlops.factories import load_sales

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
