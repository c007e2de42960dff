"""The alert inbox in the admin: unread first, severity in colour and word, the way to review."""

import datetime as dt

from django.utils import timezone

from alerts.models import MLAlert
from alerts.services import mark_alert_read, raise_alert
from tests.admin.conftest import logged_in
from tests.mlops.factories import ModelVersionFactory


def _alert(title, *, severity="warning", alert_type="backtest_degradation", **fields):
    return raise_alert(
        alert_type=alert_type,
        severity=severity,
        title=title,
        message=f"{title}.",
        dedup_key=title,
        **fields,
    )


def test_inbox_lists_unread_alerts_before_read_ones_even_when_older(manager):
    older_unread = _alert("Older but unread")
    MLAlert.objects.filter(pk=older_unread.pk).update(
        created_at=timezone.now() - dt.timedelta(days=3)
    )
    newer_read = mark_alert_read(alert=_alert("Newer and read"), user=manager)

    page = logged_in("maria").get("/admin/alerts/mlalert/").content.decode()

    assert newer_read.status == "read"
    assert page.index("Older but unread") < page.index("Newer and read")
    assert '<strong class="arena-unread">Older but unread</strong>' in page


def test_inbox_shows_severity_by_colour_and_by_word(manager):
    _alert("Drift on Electronics", severity="critical")
    _alert("Experiment finished", severity="info", alert_type="experiment_complete")

    page = logged_in("maria").get("/admin/alerts/mlalert/").content.decode()

    assert 'class="arena-pill severity-critical" style="background: #b00020">Critical<' in page
    assert 'class="arena-pill severity-info" style="background: #1f5fa8">Info<' in page


def test_an_alert_about_a_challenger_leads_to_its_review_page_with_the_gate_numbers(manager):
    challenger = ModelVersionFactory(
        status="challenger",
        last_evaluation={
            "promote": True,
            "reason": "Beats the champion",
            "checks": {"mae": True, "mape": True, "coverage": True, "confidence": True},
            "improvement": {"mae_pct": 12.5, "mape_pct": 9.0},
            "thresholds": {"min_improvement_pct": 5.0, "min_confidence": 0.95},
            "test": {"name": "wilcoxon_signed_rank_one_sided", "confidence": 0.991},
            "candidate_metrics": {"mae": 3.5},
            "champion_metrics": {"mae": 4.0},
        },
    )
    alert = _alert("Promotion pending", alert_type="promotion_pending", model_version=challenger)
    client = logged_in("maria")
    review_url = f"/admin/mlops/modelversion/{challenger.pk}/change/"

    inbox = client.get("/admin/alerts/mlalert/").content.decode()
    page = client.get(alert.action_url).content.decode()

    assert f'<a class="nowrap" href="{review_url}">Review {challenger.version}</a>' in inbox
    assert f'id="alert-review-link" href="{review_url}"' in page
    assert "12.5% better (need ≥ 5.0% better)" in page and "0.991" in page
    assert client.get(review_url).status_code == 200


def test_mark_read_action_marks_the_selected_unread_alerts(manager):
    first, second = _alert("First"), _alert("Second")

    response = logged_in("maria").post(
        "/admin/alerts/mlalert/",
        {"action": "mark_read", "_selected_action": [first.pk, second.pk]},
    )

    assert response.status_code == 302
    assert set(MLAlert.objects.values_list("status", flat=True)) == {"read"}
    assert set(MLAlert.objects.values_list("read_by__username", flat=True)) == {"maria"}
