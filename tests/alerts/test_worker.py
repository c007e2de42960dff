"""End to end: an alert committed in a request's transaction is emailed by a real Celery worker."""

import pytest
from django.db import transaction

from alerts.models import NotificationDelivery
from tests.alerts.conftest import wait_for
from tests.alerts.test_email import raise_drift
from tests.processes import running_worker


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_emails_the_alert_once_the_transaction_commits(
    tmp_path, smtp_server, manager, champion
):
    server = smtp_server("accept")
    with running_worker(
        tmp_path,
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(server.port),
        SITE_SCHEME="https",
        SITE_PORT="443",
    ) as worker:
        with transaction.atomic():
            alert = raise_drift(champion)
            raise_drift(champion, recent_mae=19.0)  # a repeat in the same breath
        try:
            wait_for(lambda: NotificationDelivery.objects.filter(status="sent").count() == 2, 60)
        except AssertionError:
            raise AssertionError(worker.output()[-4000:]) from None

    [message] = server.messages()
    assert message["To"] == manager.email
    assert "Drift detected on demand_forecast v12" in message["Subject"]
    link = f"https://acme.testserver/admin/alerts/mlalert/{alert.pk}/change/"
    assert link in message.get_body(preferencelist=("plain",)).get_content()
    assert link in message.get_body(preferencelist=("html",)).get_content()
    assert sorted(
        NotificationDelivery.objects.filter(alert=alert).values_list("channel__kind", "status")
    ) == [("email", "sent"), ("in_app", "sent")]
