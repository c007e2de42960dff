"""Celery entry points of the alert inbox: notification delivery with retries."""

from alerts.services import deliver_alert_notifications, retry_countdown
from config.celery import app

# A transient failure (4xx reply, refused connection, timeout) is tried again this many times,
# after exponentially growing waits (alerts.services.retry_countdown).
MAX_DELIVERY_RETRIES = 5


@app.task(bind=True, name="alerts.tasks.deliver_alert", max_retries=MAX_DELIVERY_RETRIES)
def deliver_alert(self, alert_id: int) -> dict:
    """Deliver one alert over its channels; retry the recipients whose failure may pass."""
    report = deliver_alert_notifications(alert_id=alert_id)
    if report.retry and self.request.retries < self.max_retries:
        raise self.retry(countdown=retry_countdown(self.request.retries))
    return report.as_dict()
