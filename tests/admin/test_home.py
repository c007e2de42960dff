"""The tenant admin's home page: models side by side, unread alerts, retrains, next runs."""

import re

from django.urls import reverse

from alerts.services import raise_alert
from mlops.health_selectors import model_health
from mlops.models import ModelRetrainingLog, Trigger
from mlops.schedules import next_run_at, tenant_schedules
from tests.admin.conftest import logged_in
from tests.admin.factories import build_arena


def card(html: str, segment: str) -> str:
    return re.search(
        rf'<div class="arena-card model-card" data-segment="{re.escape(segment)}">.*?</div>\s*</div>\s*</div>',
        html,
        flags=re.S,
    ).group(0)


def test_home_shows_champion_and_challenger_side_by_side_with_the_health_numbers(viewer):
    arena = build_arena()
    (health,) = model_health(name="demand_forecast")

    html = logged_in("vera").get("/admin/").content.decode()

    global_card = card(html, "global")
    champion, challenger = global_card.split('class="arena-side challenger-side"')
    assert f">{arena.champion.version}</a>" in champion
    assert f"{health['champion']['mae_7d']:.2f} units" in champion
    assert f"{health['champion']['mae_30d']:.2f} units" in champion
    assert health["champion"]["trend"] in champion
    assert arena.champion.promoted_at.strftime("%Y-%m-%d") in champion
    assert f">{arena.challenger.version}</a>" in challenger
    assert arena.challenger.algorithm in challenger
    confidence = health["challenger"]["confidence"]
    assert (f"{confidence:.3f}" if confidence is not None else "—") in challenger
    assert ("✔ yes" if health["challenger"]["promotion_eligible"] else "✘ no") in challenger
    assert reverse("admin:mlops_modelversion_change", args=[arena.challenger.pk]) in challenger


def test_home_counts_unread_alerts_by_severity_and_links_to_the_inbox(viewer):
    for index, severity in enumerate(["critical", "warning", "warning", "info"]):
        raise_alert(
            alert_type="backtest_degradation",
            severity=severity,
            title=f"Alert {index}",
            message="-",
            dedup_key=f"home-{index}",
        )

    html = logged_in("vera").get("/admin/").content.decode()

    summary = re.search(
        r'<section class="arena-card" id="alerts-summary">.*?</section>', html, re.S
    )
    counts = dict(
        re.findall(r">(Critical|Warning|Info)</span> <strong class=\"count\">(\d+)<", summary[0])
    )
    assert counts == {"Critical": "1", "Warning": "2", "Info": "1"}
    assert "/admin/alerts/mlalert/?status__exact=unread" in summary[0]
    # The header's badge, on every admin page.
    assert re.search(r'id="unread-alerts-badge".*?<span class="count">4</span>', html, re.S)


def test_home_lists_latest_retrains_with_trigger_and_outcome(viewer):
    ModelRetrainingLog.objects.create(
        trigger=Trigger.DRIFT_DETECTED, status="succeeded", outcome="challenger"
    )
    ModelRetrainingLog.objects.create(
        trigger=Trigger.SCHEDULED, status="failed", error="No sales in the window"
    )

    html = logged_in("vera").get("/admin/").content.decode()

    retrains = re.search(r'id="recent-retrains">.*?</section>', html, re.S)[0]
    assert "Drift detected" in retrains and "challenger" in retrains
    assert "Scheduled" in retrains and "Failed" in retrains and "No sales in the window" in retrains
    assert retrains.index("Scheduled") < retrains.index("Drift detected")  # newest first


def test_home_lists_next_scheduled_runs_soonest_first_in_the_tenants_time_zone(tenant, viewer):
    html = logged_in("vera").get("/admin/").content.decode()

    runs = re.search(r'id="next-runs">.*?</section>', html, re.S)[0]
    expected = sorted(
        (next_run_at(task), task.name.split("@")[0].replace("_", " ").capitalize())
        for task in tenant_schedules(tenant=tenant)
    )
    shown = re.findall(r'title="[^"]*">([^<]+)</a>', runs)
    assert shown == [job for _, job in expected]
    first_run = expected[0][0]
    assert first_run.strftime("%Y-%m-%d %H:%M") in runs
    assert "CET" in runs or "CEST" in runs  # Europe/Berlin, the tenant's zone


def test_home_still_lists_every_section_of_the_admin(viewer):
    html = logged_in("vera").get("/admin/").content.decode()

    for section in ("Model versions", "Backtest results", "Model retraining logs", "Stores"):
        assert section in html


def test_home_counts_open_experiments_by_stage(viewer):
    from tests.experiments.factories import ExperimentFactory

    ExperimentFactory.create_batch(2)
    ExperimentFactory(status="shadow_testing")
    ExperimentFactory(status="completed")

    html = logged_in("vera").get("/admin/").content.decode()

    summary = re.search(r'id="experiments-summary">.*?</section>', html, re.S)[0]
    counts = dict(re.findall(r'">([^<]+)</a></td><td class="num"><strong>(\d+)<', summary))
    assert counts == {
        "Waiting for approval": "2",
        "Approved, not started": "0",
        "Training": "0",
        "Shadow testing": "1",
    }


def test_a_drifting_champion_says_what_its_incident_saw(viewer, manager):
    from mlops.services import detect_drift, promote_to_champion
    from tests.mlops.factories import ModelVersionFactory
    from tests.mlops.test_health import evaluated, t_minus_1

    champion = evaluated(ModelVersionFactory(), mae=10.0)
    promote_to_champion(version=champion, actor=manager, reason="baseline 10")
    t_minus_1(champion, [12.5] * 7)
    as_of = detect_drift().as_of

    page = logged_in("vera").get("/admin/").content.decode()

    numbers = re.search(r'<p class="help drift-numbers">(.*?)</p>', page, flags=re.S).group(1)
    assert " ".join(numbers.split()) == (
        f"MAE 25.0% worse than its baseline (served forecasts up to {as_of.isoformat()}: MAE "
        "12.50 units against 10.00 units when its recipe began serving)."
    )
