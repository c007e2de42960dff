"""Raising, deduplicating, reading and counting alerts; who is emailed."""

import threading
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection
from django.utils import timezone
from django_fsm import TransitionNotAllowed

from alerts.models import MLAlert, NotificationPreference
from alerts.selectors import alert_list, alert_stats, email_recipients, unread_alert_count
from alerts.services import act_on_alert, mark_alert_read, raise_alert
from tests.mlops.factories import UserFactory


def raise_degradation(version=None, *, mae=14.0, severity="warning", **kwargs):
    return raise_alert(
        alert_type="backtest_degradation",
        severity=severity,
        title=f"Backtest MAE rose to {mae}",
        message="The weekly walk-forward backtest is worse than last week.",
        metadata={"recent_mae": mae},
        model_version=version,
        **kwargs,
    )


def test_new_alert_is_unread_and_links_to_its_admin_page(champion):
    alert = raise_degradation(champion)
    assert alert.status == MLAlert.Status.UNREAD
    assert alert.occurrences == 1
    assert alert.dedup_key == f"backtest_degradation:modelversion:{champion.pk}"
    assert alert.action_url == f"/admin/alerts/mlalert/{alert.pk}/change/"
    assert alert.requires_action == "maybe"


def test_repeat_while_open_updates_the_alert_counts_it_and_queues_no_second_delivery(
    champion, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as first:
        alert = raise_degradation(champion, mae=14.0)
    mark_alert_read(alert=alert, user=UserFactory())
    with django_capture_on_commit_callbacks() as second:
        again = raise_degradation(champion, mae=16.5, severity="critical")

    assert again.pk == alert.pk
    again.refresh_from_db()
    assert again.occurrences == 2
    assert again.metadata == {"recent_mae": 16.5}
    assert again.title == "Backtest MAE rose to 16.5"
    assert again.severity == "critical"  # escalated, never lowered
    assert again.status == "read"  # a repeat does not make it unread again
    assert again.last_raised_at > again.created_at
    assert (len(first), len(second)) == (1, 0)


def test_a_lower_severity_repeat_keeps_the_higher_severity(champion):
    raise_degradation(champion, severity="critical")
    again = raise_degradation(champion, severity="info")
    assert again.severity == "critical"


def test_different_causes_open_different_alerts(champion, challenger):
    first = raise_degradation(champion)
    second = raise_degradation(challenger)
    third = raise_degradation(dedup_key="backtest_degradation:department:Electronics")
    assert len({first.pk, second.pk, third.pk}) == 3


def test_closed_alert_raised_within_cooldown_is_counted_not_reopened(
    settings, champion, manager, django_capture_on_commit_callbacks
):
    settings.ALERT_COOLDOWN_SECONDS = {"backtest_degradation": 3600}
    alert = raise_degradation(champion)
    act_on_alert(alert=alert, user=manager, action="dismiss")

    with django_capture_on_commit_callbacks() as queued:
        again = raise_degradation(champion)

    assert again.pk == alert.pk
    assert again.status == "dismissed"
    assert again.occurrences == 2
    assert queued == []
    assert MLAlert.objects.count() == 1


def test_closed_alert_raised_after_cooldown_opens_a_new_alert(settings, champion, manager):
    settings.ALERT_COOLDOWN_SECONDS = {"backtest_degradation": 3600}
    alert = raise_degradation(champion)
    act_on_alert(alert=alert, user=manager, action="dismiss")
    MLAlert.objects.filter(pk=alert.pk).update(actioned_at=timezone.now() - timedelta(hours=2))

    again = raise_degradation(champion)

    assert again.pk != alert.pk
    assert again.status == "unread"
    assert again.occurrences == 1


def test_unknown_type_or_severity_is_refused():
    with pytest.raises(ValueError):
        raise_alert(alert_type="nonsense", severity="warning", title="t", message="m")
    with pytest.raises(ValueError):
        raise_alert(alert_type="retrain_failed", severity="loud", title="t", message="m")
    assert MLAlert.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_raises_of_one_cause_leave_one_alert_counting_all(tenant, eager_celery):
    workers = 6
    barrier = threading.Barrier(workers)
    errors = []

    def raise_once():
        try:
            connection.set_tenant(tenant)
            barrier.wait(timeout=10)
            raise_degradation(dedup_key="backtest_degradation:global")
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=raise_once) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    [alert] = MLAlert.objects.all()
    assert alert.occurrences == workers


def test_reading_records_who_and_when_once(manager, viewer):
    alert = raise_degradation()
    read = mark_alert_read(alert=alert, user=viewer)
    assert (read.status, read.read_by, read.read_at is not None) == ("read", viewer, True)
    again = mark_alert_read(alert=alert, user=manager)
    assert again.read_by == viewer and again.read_at == read.read_at


def test_acting_on_a_closed_alert_is_refused(manager):
    alert = raise_degradation()
    act_on_alert(alert=alert, user=manager, action="approve", note="looked into it")
    with pytest.raises(TransitionNotAllowed):
        act_on_alert(alert=alert, user=manager, action="dismiss")
    alert.refresh_from_db()
    assert (alert.status, alert.action_taken, alert.action_note) == (
        "actioned",
        "approve",
        "looked into it",
    )


def test_unknown_action_is_refused(manager):
    alert = raise_degradation()
    with pytest.raises(ValueError):
        act_on_alert(alert=alert, user=manager, action="escalate")


def test_stats_count_unread_by_severity_and_badge_counts_unread(manager):
    raise_alert(alert_type="drift_detected", severity="critical", title="a", message="m")
    raise_degradation(dedup_key="one")
    raise_degradation(dedup_key="two")
    read = raise_degradation(dedup_key="three")
    mark_alert_read(alert=read, user=manager)
    closed = raise_alert(alert_type="experiment_complete", severity="info", title="e", message="m")
    act_on_alert(alert=closed, user=manager, action="dismiss")

    stats = alert_stats()

    assert stats["unread"] == {"critical": 1, "warning": 2, "info": 0, "total": 3}
    assert stats["open"]["total"] == 4
    assert stats["open"]["action_required"] == 1  # the drift alert
    assert stats["by_status"] == {
        "unread": 3,
        "read": 1,
        "actioned": 0,
        "dismissed": 1,
        "resolved": 0,  # closed by the system when its cause went away
    }
    assert unread_alert_count() == 3


def test_alert_list_filters_by_status_severity_and_type(manager):
    drift = raise_alert(alert_type="drift_detected", severity="critical", title="a", message="m")
    degradation = raise_degradation(dedup_key="one")
    mark_alert_read(alert=degradation, user=manager)

    assert list(alert_list(severity="critical")) == [drift]
    assert list(alert_list(status="read")) == [degradation]
    assert list(alert_list(alert_type=["drift_detected", "backtest_degradation"])) == [
        degradation,
        drift,
    ]
    assert list(alert_list(status="dismissed")) == []


def test_managers_are_emailed_by_default_and_preferences_override(manager, viewer):
    UserFactory(username="nomail", email="", role="ml_manager")
    UserFactory(username="gone", email="gone@acme.example", role="ml_manager", is_active=False)
    quiet = UserFactory(username="quiet", email="quiet@acme.example", role="ml_manager")
    NotificationPreference.objects.create(user=quiet, email_enabled=False)
    NotificationPreference.objects.create(user=viewer, min_severity="critical")

    assert email_recipients(severity="warning") == ["maria@acme.example"]
    assert email_recipients(severity="critical") == ["maria@acme.example", "victor@acme.example"]
    assert email_recipients(severity="info") == []
