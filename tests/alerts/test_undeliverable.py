"""One address the mail server refuses for good (no such mailbox) is marked undeliverable and
skipped; everyone else is still emailed, the channel stays enabled, and the admin shows it."""

from alerts.models import NotificationChannel, NotificationDelivery, UndeliverableRecipient
from alerts.services import raise_alert
from tests.alerts.test_email import email_deliveries, raise_drift
from tests.mlops.factories import UserFactory

GONE = "omar@acme.example"
HOST = {"HTTP_HOST": "acme.testserver"}


def raise_failed_retrain():
    return raise_alert(
        alert_type="retrain_failed",
        severity="warning",
        title="Retrain of demand_forecast failed",
        message="Out of memory",
    )


def test_a_refused_recipient_is_marked_and_skipped_while_the_others_are_still_emailed(
    smtp_server, manager, champion, django_capture_on_commit_callbacks, eager_celery
):
    UserFactory(username="omar", email=GONE, role="ml_manager")
    server = smtp_server("accept", unknown=(GONE,))
    with django_capture_on_commit_callbacks(execute=True):
        first = raise_drift(champion)

    assert [m["To"] for m in server.messages()] == ["maria@acme.example"]
    deliveries = {d.recipient: d for d in email_deliveries(first)}
    assert deliveries["maria@acme.example"].status == "sent"
    refused = deliveries[GONE]
    assert (refused.status, refused.permanent) == ("failed", True)
    assert "550" in refused.error and "User unknown" in refused.error
    email = NotificationChannel.objects.get(kind="email")
    assert email.enabled and not email.disabled_reason  # the channel is fine
    [mark] = UndeliverableRecipient.objects.all()
    assert (mark.channel, mark.recipient, mark.alert) == (email, GONE, first)
    assert "User unknown" in mark.reason

    with django_capture_on_commit_callbacks(execute=True):
        second = raise_failed_retrain()
    # The next alert reaches Maria; the refused address is not tried again.
    assert [m["To"] for m in server.messages()] == ["maria@acme.example"] * 2
    assert [d.recipient for d in email_deliveries(second)] == ["maria@acme.example"]
    assert server.attempts().count(f"550 {GONE}") == 1


def test_the_only_recipient_refused_leaves_the_channel_enabled_for_the_next_one(
    smtp_server, manager, champion, django_capture_on_commit_callbacks, eager_celery
):
    server = smtp_server("accept", unknown=("maria@acme.example",))
    with django_capture_on_commit_callbacks(execute=True):
        raise_drift(champion)

    assert NotificationChannel.objects.get(kind="email").enabled
    assert server.messages() == []
    UserFactory(username="nina", email="nina@acme.example", role="ml_manager")
    with django_capture_on_commit_callbacks(execute=True):
        later = raise_failed_retrain()
    assert [m["To"] for m in server.messages()] == ["nina@acme.example"]
    assert NotificationDelivery.objects.get(alert=later, channel__kind="email").status == "sent"


def test_the_admin_shows_the_undeliverable_address_and_an_administrator_clears_it(
    client, smtp_server, manager, champion, django_capture_on_commit_callbacks, eager_celery
):
    UserFactory(username="omar", email=GONE, role="ml_manager")
    server = smtp_server("accept", unknown=(GONE,))
    with django_capture_on_commit_callbacks(execute=True):
        raise_drift(champion)
    admin_user = UserFactory(username="mona", role="ml_manager", is_staff=True)
    client.force_login(admin_user)

    listing = client.get("/admin/alerts/undeliverablerecipient/", **HOST).content.decode()
    assert GONE in listing and "User unknown" in listing
    email = NotificationChannel.objects.get(kind="email")
    page = client.get(f"/admin/alerts/notificationchannel/{email.pk}/change/", **HOST)
    assert GONE in page.content.decode()
    assert "no longer emailed" in page.content.decode()

    # Clearing is a change of the channel's setup: the administrator's, as re-enabling is.
    mark = UndeliverableRecipient.objects.get()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    cleared = client.post(
        "/admin/alerts/undeliverablerecipient/",
        {"action": "deliver_again", "_selected_action": [mark.pk]},
        **HOST,
    )
    assert cleared.status_code == 302
    assert not UndeliverableRecipient.objects.exists()

    fixed = smtp_server("accept")  # the mailbox exists again
    with django_capture_on_commit_callbacks(execute=True):
        raise_failed_retrain()
    assert {"maria@acme.example", GONE} <= {m["To"] for m in fixed.messages()}
    assert len(server.messages()) == 1
