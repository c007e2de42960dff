"""A canary in a replay (`replay_operations --canary`): "what would this rollout have done last
month?". A candidate that over-forecasts one department, started on a replayed day, is rolled
back by the tenant's own daily canary judging within two days, and the report shows the plan,
its steps and the guardrail numbers behind the rollback."""

import datetime as dt
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_celery_beat.models import PeriodicTask
from django_tenants.utils import get_public_schema_name, schema_context

from forecasting.families import FAMILIES
from forecasting.families.seasonal_naive import SeasonalNaiveModel
from forecasting.synthetic import generate_sales
from mlops.models import ModelVersion
from mlops.services.replay import sandbox_slug
from tenants.models import Tenant
from tests.mlops.factories import ModelVersionFactory

START = dt.date(2026, 3, 3)  # a Tuesday: no weekly job in the replayed mornings (Wed to Sat)
CANARY_DAY = START + dt.timedelta(days=1)
END = START + dt.timedelta(days=3)
GROCERY_FACTOR = 1.3


class GroceryHeavyModel(SeasonalNaiveModel):
    """Seasonal naive with its Grocery forecasts x 1.3: a candidate that over-forecasts one
    department (and stocks it 30% too high)."""

    algorithm = "seasonal_naive_grocery_x1_3"

    def _predict_point(self, *, history, future_promotion, dates):
        forecast = super()._predict_point(
            history=history, future_promotion=future_promotion, dates=dates
        )
        forecast[history.departments == "Grocery"] *= GROCERY_FACTOR
        return forecast


@pytest.fixture
def source(tenant, monkeypatch):
    """acme with a seasonal-naive champion and the candidate v2, both on 8-week windows."""
    monkeypatch.setitem(FAMILIES, GroceryHeavyModel.algorithm, GroceryHeavyModel)
    ModelVersionFactory(
        version_number=1,
        status=ModelVersion.Status.CHAMPION,
        algorithm="seasonal_naive",
        window_days=56,
    )
    ModelVersionFactory(version_number=2, algorithm=GroceryHeavyModel.algorithm, window_days=56)
    return tenant


def _replay(tmp_path, *options):
    report = tmp_path / "replay.json"
    with schema_context(get_public_schema_name()):
        call_command(
            "replay_operations",
            "--tenant",
            "acme",
            "--start",
            START.isoformat(),
            "--end",
            END.isoformat(),
            *options,
            "--report",
            str(report),
        )
    return json.loads(report.read_text())


@pytest.mark.slow  # a replay: about 20 s, like the other replays (tests/mlops/test_replay.py)
@pytest.mark.django_db(transaction=True)
def test_a_replayed_canary_over_forecasting_grocery_is_rolled_back_within_two_days(
    source, tmp_path
):
    sales = tmp_path / "sales.csv"
    generate_sales(stores=4, products=20, days=120, seed=7, end_date=END).to_csv(sales, index=False)
    try:
        report = _replay(
            tmp_path,
            "--sales",
            str(sales),
            "--canary",
            "v2",
            "--canary-start",
            CANARY_DAY.isoformat(),
            "--canary-steps",
            "50,100",
            "--canary-bake-days",
            "2",
        )
    finally:
        with schema_context(get_public_schema_name()):
            sandbox = Tenant.objects.filter(slug=sandbox_slug(source)).first()
            if sandbox is not None:
                PeriodicTask.objects.filter(name__endswith=f"@{sandbox.schema_name}").delete()
                sandbox.delete(force_drop=True)

    # The tenant's 06:30 canary judging ran every replayed morning, like its other jobs.
    assert all("daily_canary_evaluation" in [j["job"] for j in d["jobs"]] for d in report["days"])
    (plan,) = report["summary"]["rollouts"]
    started, day = dt.date.fromisoformat(plan["started_on"]), CANARY_DAY
    assert started == day and (plan["shares"], plan["bake_days"]) == ([0.5, 1.0], 2)
    # Still at its first step: half of the series, never all of them.
    assert plan["outcome"] == "rolled_back" and (plan["step"], plan["share"]) == (1, 0.5)
    # Judged on its first or second served day, and rolled back the next morning.
    decision = plan["decisions"][-1]
    assert decision["kind"] == "rolled_back" and decision["by"] == "system"
    judged = dt.date.fromisoformat(decision["day"])
    assert judged - started <= dt.timedelta(days=2)
    assert dt.date.fromisoformat(plan["ended_on"]) == judged + dt.timedelta(days=1)
    assert [each["kind"] for each in plan["decisions"]] in (
        ["started", "rolled_back"],
        ["started", "judged", "rolled_back"],
    )
    # The rollback shows its numbers: a guardrail worse than its tolerance, with confidence.
    assert decision["breaches"], decision
    assert any(b["scope"] == "department:Grocery" for b in decision["breaches"])
    for breach in decision["breaches"]:
        assert breach["breached"] and breach["worse_by"] > breach["tolerance"]
        assert breach["confidence"] >= breach["required_confidence"]
    assert {g["metric"] for g in decision["guardrails"]} == {
        "wape",
        "bias",
        "stockout_miss_rate",
        "overstock_rate",
        "interval_coverage",
    }
    # The judged day lists the decision, and an alert was raised for it.
    (judged_day,) = [d for d in report["days"] if d["date"] == decision["day"]]
    assert [r["kind"] for r in judged_day["rollouts"]] == ["rolled_back"]
    (start_day,) = [d for d in report["days"] if d["date"] == plan["started_on"]]
    assert [r["kind"] for r in start_day["rollouts"]] == ["started"]
    assert report["summary"]["alerts_by_type"].get("canary_rolled_back") == 1
    # The canary never counts as the segment's champion; the champion served every day.
    assert all(
        [s["champion"] for s in d["segments"]] == [report_champion(report)] for d in report["days"]
    )
    assert plan["champion"] == report_champion(report) != plan["version"]


def report_champion(report):
    return report["days"][0]["segments"][0]["champion"]


def test_a_canary_the_replay_cannot_run_is_refused_before_anything_is_built(source, tmp_path):
    ModelVersionFactory(name="returns_forecast", version_number=3)  # no champion of its own
    percentages = "give percentages above 0 and at most 100"
    refusals = {
        ("--canary", "v9"): "acme has no version v9",
        ("--canary", "v3"): "v3 is a version of returns_forecast, which has no champion",
        ("--canary", "v2", "--canary-steps", "50,25"): "larger than the one before",
        ("--canary", "v2", "--canary-steps", "ten"): percentages,
        ("--canary", "v2", "--canary-steps", "50,150"): percentages,
        ("--canary", "v2", "--canary-start", "2026-04-01"): "starts on 2026-04-01, outside",
        ("--canary-steps", "10,100", "--canary-bake-days", "2"): "--canary-steps, "
        "--canary-bake-days need --canary VERSION",
    }
    for options, message in refusals.items():
        with pytest.raises(CommandError, match=message):
            _replay(tmp_path, *options)
    # A tenant that does not judge canaries (its 06:30 job disabled) would never judge the plan.
    PeriodicTask.objects.filter(name="daily_canary_evaluation@acme").update(enabled=False)
    with pytest.raises(CommandError, match="no enabled daily_canary_evaluation schedule"):
        _replay(tmp_path, "--canary", "v2")
    with schema_context(get_public_schema_name()):
        assert not Tenant.objects.filter(slug=sandbox_slug(source)).exists()
