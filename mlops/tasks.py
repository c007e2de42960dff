"""Celery entry points of the registry: they load ids, call one service, and return a summary."""

from __future__ import annotations

import zoneinfo

from django.db import connection
from django.utils import timezone

from config.celery import app
from mlops.models import ModelRetrainingLog

# A retrain reads two years of sales, fits, and refits both recipes over the evaluation
# windows; past the soft limit the retrain fails (and says so in its log) instead of hanging.
RETRAIN_SOFT_TIME_LIMIT = 55 * 60
RETRAIN_TIME_LIMIT = 60 * 60


@app.task(
    name="mlops.tasks.retrain_model",
    acks_late=True,
    soft_time_limit=RETRAIN_SOFT_TIME_LIMIT,
    time_limit=RETRAIN_TIME_LIMIT,
)
def retrain_model(log_id: int) -> dict:
    """Run the queued retrain `log_id`; returns its status and outcome."""
    from mlops.services import retrain_forecast_model

    log = ModelRetrainingLog.objects.select_related("requested_by").get(pk=log_id)
    if log.status == ModelRetrainingLog.Status.SUCCEEDED:
        return {"log": log.pk, "status": log.status, "outcome": log.outcome}
    log = retrain_forecast_model(trigger=log.trigger, log=log)
    from alerts.services import notify_retrain_outcome

    notify_retrain_outcome(log=log)  # pending promotion after drift/new products; failures
    return {
        "log": log.pk,
        "status": log.status,
        "outcome": log.outcome,
        "version": log.resulting_version_id,
    }


@app.task(name="mlops.tasks.weekly_retrain")
def weekly_retrain() -> list[int]:
    """Queue a scheduled retrain of every model name/segment with a champion; returns log ids."""
    from mlops.services import queue_scheduled_retrains

    return [log.pk for log in queue_scheduled_retrains()]


@app.task(name="mlops.tasks.daily_forecast", acks_late=True)
def daily_forecast() -> dict:
    """Forecast the next 7 days from today (in the tenant's time zone); returns the counts."""
    from mlops.services import forecast_next_days

    time_zone = zoneinfo.ZoneInfo(getattr(connection.tenant, "time_zone", None) or "UTC")
    summary = forecast_next_days(day=timezone.now().astimezone(time_zone).date())
    return {
        "day": summary.day.isoformat(),
        "active_series": summary.active_series,
        "forecast_rows": summary.forecast_rows,
        "shadow_rows": summary.shadow_rows,
    }
