"""The tenant admin's alert pages: open (reads), approve/dismiss buttons, channel and delivery log."""

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from alerts.models import MLAlert, NotificationChannel, NotificationDelivery
from alerts.services import channel, raise_alert
from mlops.models import ModelVersion
from tests.mlops.factories import UserFactory

HOST = {"HTTP_HOST": "acme.testserver"}


@pytest.fixture
def staff_manager():
    return UserFactory(username="mona", email="mona@acme.example", role="ml_manager", is_staff=True)


@pytest.fixture
def staff_viewer():
    return UserFactory(username="vera", email="vera@acme.example", role="viewer", is_staff=True)


@pytest.fixture
def pending(challenger):
    return raise_alert(
        alert_type="promotion_pending",
        severity="warning",
        title="Promotion pending: demand_forecast v13 awaits review",
        message="Drift retrain produced a challenger.",
        metadata={"challenger_mae": 11.2},
        model_version=challenger,
    )


def test_opening_an_alert_marks_it_read_and_offers_the_decision(
    client, staff_manager, challenger, pending
):
    # Approve is offered when the challenger's evidence recommends it.
    ModelVersion.objects.filter(pk=challenger.pk).update(
        last_evaluation={"promote": True, "ready": True, "reason": "Beats the champion."}
    )
    client.force_login(staff_manager)

    response = client.get(pending.action_url, **HOST)

    assert response.status_code == 200
    assert b"Approve: promote v13 to champion" in response.content
    pending.refresh_from_db()
    assert (pending.status, pending.read_by) == ("read", staff_manager)


def test_without_evidence_for_the_challenger_the_alert_offers_acknowledge_not_approve(
    client, staff_manager, pending
):
    client.force_login(staff_manager)

    response = client.get(pending.action_url, **HOST)

    assert b"Approve: promote v13" not in response.content
    assert b'value="acknowledge"' in response.content


def test_manager_approves_from_the_admin_and_the_challenger_becomes_champion(
    client, staff_manager, champion, challenger, pending
):
    client.force_login(staff_manager)

    response = client.post(
        f"/admin/alerts/mlalert/{pending.pk}/decide/",
        {"action": "approve", "note": "ok"},
        **HOST,
    )

    assert response.status_code == 302
    assert ModelVersion.objects.get(pk=challenger.pk).status == "champion"
    pending.refresh_from_db()
    assert (pending.status, pending.actioned_by, pending.action_note) == (
        "actioned",
        staff_manager,
        "ok",
    )


def test_viewer_sees_no_buttons_and_a_forged_approval_changes_nothing(
    client, staff_viewer, champion, challenger, pending
):
    client.force_login(staff_viewer)
    page = client.get(pending.action_url, **HOST)
    assert page.status_code == 200
    assert b"Approve" not in page.content

    response = client.post(
        f"/admin/alerts/mlalert/{pending.pk}/decide/", {"action": "approve"}, **HOST
    )

    assert response.status_code == 302
    assert any("Nothing was changed" in str(m) for m in get_messages(response.wsgi_request))
    assert ModelVersion.objects.get(pk=challenger.pk).status == "challenger"
    pending.refresh_from_db()
    assert pending.status == "read" and pending.actioned_by is None


def test_alert_list_shows_unread_count_and_a_disabled_email_channel(client, staff_manager, pending):
    email = channel(NotificationChannel.Kind.EMAIL)
    email.enabled = False
    email.disabled_at = timezone.now()
    email.disabled_reason = "SMTP 554 5.7.1 relaying denied"
    email.save()
    client.force_login(staff_manager)

    response = client.get("/admin/alerts/mlalert/", **HOST)

    assert response.status_code == 200
    assert b"ML alerts (1 unread)" in response.content
    assert b"Email notifications are disabled" in response.content
    assert b"relaying denied" in response.content
    channels = client.get("/admin/alerts/notificationchannel/", **HOST)
    assert b"relaying denied" in channels.content


def test_delivery_log_is_read_only(client, staff_manager, pending):
    delivery = NotificationDelivery.objects.create(
        alert=pending,
        channel=channel("email"),
        recipient="mona@acme.example",
        status="failed",
        error="SMTP 451 try later",
    )
    admin = UserFactory(username="boss", is_staff=True, is_superuser=True)
    client.force_login(admin)

    listing = client.get("/admin/alerts/notificationdelivery/", **HOST)
    assert listing.status_code == 200 and b"SMTP 451 try later" in listing.content
    assert client.get("/admin/alerts/notificationdelivery/add/", **HOST).status_code == 403
    client.post(
        f"/admin/alerts/notificationdelivery/{delivery.pk}/change/",
        {"status": "sent", "error": ""},
        **HOST,
    )
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert MLAlert.objects.count() == 1
