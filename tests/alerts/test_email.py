"""Email notifications through a real SMTP server process: content, dedup, refusals and retries."""

from django.db import connection

from alerts.models import MLAlert, NotificationChannel, NotificationDelivery
from alerts.services import (
    deliver_alert_notifications,
    enable_channel,
    raise_alert,
    retry_countdown,
)
from alerts.tasks import deliver_alert
from tests.mlops.factories import UserFactory


def raise_drift(champion, *, recent_mae=18.5, drift_pct=44.5):
    return raise_alert(
        alert_type="drift_detected",
        severity="critical",
        title=f"Drift detected on demand_forecast {champion.version} (MAE +{drift_pct:.0f}%)",
        message="Champion error rose above the drift threshold. An emergency retrain is queued.",
        metadata={"baseline_mae": 12.8, "recent_mae": recent_mae, "drift_pct": drift_pct},
        model_version=champion,
    )


def email_deliveries(alert):
    return list(
        NotificationDelivery.objects.filter(
            alert=alert, channel__kind=NotificationChannel.Kind.EMAIL
        ).order_by("pk")
    )


def test_alert_email_through_real_smtp_server_has_subject_both_bodies_and_link(
    smtp_server, site, manager, champion, django_capture_on_commit_callbacks, eager_celery
):
    server = smtp_server("accept")
    with django_capture_on_commit_callbacks(execute=True):
        alert = raise_drift(champion)

    [message] = server.messages()
    # The encoded subject is folded onto its own line; unfolding leaves one leading blank.
    assert message["Subject"].strip() == (
        "[Forecast Arena · Acme Retail] Critical: Drift detected on demand_forecast v12 (MAE +44%)"
    )
    assert message["To"] == "maria@acme.example"
    link = f"https://acme.testserver:8443/admin/alerts/mlalert/{alert.pk}/change/"
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    for body in (text, html):
        assert link in body
        assert "Baseline MAE" in body and "12.8" in body
        assert "Recent MAE" in body and "18.5" in body
        assert "44.5% worse" in body
        assert "emergency retrain is queued" in body
    assert f'href="{link}"' in html
    assert "Action required" in text
    [delivery] = email_deliveries(alert)
    assert (delivery.status, delivery.recipient, delivery.attempt) == ("sent", manager.email, 1)


def test_same_drift_raised_three_times_while_open_is_one_alert_with_three_occurrences_and_one_email(
    smtp_server, manager, champion, django_capture_on_commit_callbacks, eager_celery
):
    server = smtp_server("accept")
    for recent_mae, drift_pct in ((18.5, 44.5), (19.0, 48.4), (20.1, 57.0)):
        with django_capture_on_commit_callbacks(execute=True):
            raise_drift(champion, recent_mae=recent_mae, drift_pct=drift_pct)

    [alert] = MLAlert.objects.filter(alert_type="drift_detected")
    assert alert.occurrences == 3
    assert alert.metadata["recent_mae"] == 20.1  # the latest numbers
    assert alert.title.endswith("(MAE +57%)")
    assert len(server.messages()) == 1
    assert len(email_deliveries(alert)) == 1


def test_smtp_server_refusing_every_message_keeps_the_alert_records_errors_and_disables_email(
    smtp_server, manager, champion, django_capture_on_commit_callbacks, eager_celery
):
    UserFactory(username="omar", email="omar@acme.example", role="ml_manager")
    server = smtp_server("refuse")
    with django_capture_on_commit_callbacks(execute=True):
        alert = raise_drift(champion)

    alert.refresh_from_db()
    assert alert.status == MLAlert.Status.UNREAD  # still in the inbox
    assert MLAlert.objects.count() == 1
    failures = email_deliveries(alert)
    assert [(d.recipient, d.status, d.permanent) for d in failures] == [
        ("maria@acme.example", "failed", True),
        ("omar@acme.example", "failed", True),
    ]
    assert all("554" in d.error and "relaying denied" in d.error for d in failures)
    assert len(server.attempts()) == 2  # refused for good: not retried
    email = NotificationChannel.objects.get(kind="email")
    assert not email.enabled
    assert email.disabled_at is not None
    assert "554" in email.disabled_reason
    in_app = NotificationDelivery.objects.get(alert=alert, channel__kind="in_app")
    assert in_app.status == "sent"

    # Nothing is lost: once the mail server is fixed and the channel re-enabled, it goes out.
    admin = UserFactory(username="root", email="", is_superuser=True, is_staff=True)
    fixed = smtp_server("accept")
    with django_capture_on_commit_callbacks(execute=True):
        queued = enable_channel(channel=email, user=admin)
    assert queued == 1
    assert sorted(m["To"] for m in fixed.messages()) == ["maria@acme.example", "omar@acme.example"]
    assert [d.attempt for d in email_deliveries(alert) if d.status == "sent"] == [2, 2]


def test_alerts_raised_while_email_is_disabled_still_reach_the_inbox(
    smtp_server, manager, champion, django_capture_on_commit_callbacks, eager_celery
):
    server = smtp_server("refuse")
    with django_capture_on_commit_callbacks(execute=True):
        raise_drift(champion)
    with django_capture_on_commit_callbacks(execute=True):
        later = raise_alert(
            alert_type="retrain_failed",
            severity="warning",
            title="Retrain of demand_forecast failed",
            message="Out of memory",
        )
    assert len(server.attempts()) == 1  # the disabled channel is not tried again
    assert later.status == "unread"
    assert NotificationDelivery.objects.filter(alert=later, channel__kind="in_app").exists()


def test_transient_smtp_failure_is_retried_until_delivered(
    smtp_server, manager, champion, django_capture_on_commit_callbacks, eager_celery
):
    server = smtp_server("defer", failures=2)
    with django_capture_on_commit_callbacks(execute=True):
        alert = raise_drift(champion)

    deliveries = email_deliveries(alert)
    assert [(d.attempt, d.status, d.permanent) for d in deliveries] == [
        (1, "failed", False),
        (2, "failed", False),
        (3, "sent", False),
    ]
    assert "451" in deliveries[0].error
    assert len(server.messages()) == 1
    assert NotificationChannel.objects.get(kind="email").enabled


def test_transient_failures_give_up_after_five_retries_without_disabling_email(
    smtp_server, manager, champion
):
    server = smtp_server("defer")  # every message deferred
    alert = raise_drift(champion)

    result = deliver_alert.apply(args=[alert.pk])

    assert result.get()["retry"] == [manager.email]
    assert len(server.attempts()) == 6  # the first try and five retries
    assert [d.attempt for d in email_deliveries(alert)] == [1, 2, 3, 4, 5, 6]
    assert NotificationChannel.objects.get(kind="email").enabled
    alert.refresh_from_db()
    assert alert.status == "unread"


def test_unreachable_mail_server_is_a_transient_failure(settings, manager, champion):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    alert = raise_drift(champion)

    report = deliver_alert_notifications(alert_id=alert.pk)

    assert report.retry == [manager.email]
    [delivery] = email_deliveries(alert)
    assert delivery.status == "failed" and not delivery.permanent
    assert "Connection refused" in delivery.error or "ConnectionRefused" in delivery.error
    assert NotificationChannel.objects.get(kind="email").enabled


def test_retry_waits_grow_exponentially(settings):
    settings.ALERT_EMAIL_RETRY_BASE_SECONDS = 30
    assert [retry_countdown(n) for n in range(5)] == [30, 60, 120, 240, 480]


def test_info_alerts_are_not_emailed_by_default(mailoutbox, manager, champion):
    alert = raise_alert(
        alert_type="experiment_complete",
        severity="info",
        title="Experiment finished",
        message="Results are in.",
    )
    report = deliver_alert_notifications(alert_id=alert.pk)
    assert report.sent == ["inbox"]
    assert mailoutbox == []


def test_link_omits_the_default_port(settings, mailoutbox, manager, champion):
    settings.SITE_SCHEME, settings.SITE_PORT = "https", "443"
    alert = raise_drift(champion)
    deliver_alert_notifications(alert_id=alert.pk)
    [message] = mailoutbox
    assert f"https://acme.testserver/admin/alerts/mlalert/{alert.pk}/change/" in message.body
    assert connection.tenant.name in message.subject
