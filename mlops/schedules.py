"""The periodic jobs every tenant has, as django-celery-beat rows tagged with the tenant's schema."""

from dataclasses import dataclass

from django.db import transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from tenants.models import Tenant


@dataclass(frozen=True)
class Job:
    key: str
    task: str
    minute: str
    hour: str
    day_of_week: str
    description: str


# Times are in the tenant's own time zone (CrontabSchedule.timezone).
JOBS = (
    Job(
        "weekly_retrain",
        "mlops.tasks.weekly_retrain",
        "0",
        "2",
        "0",
        "Retrain every model on recent sales (trigger: scheduled); promote if it clears the gate.",
    ),
    Job(
        "daily_drift_detection",
        "mlops.tasks.daily_drift_detection",
        "0",
        "3",
        "*",
        "Compare recent champion error with its baseline; on drift alert and retrain.",
    ),
    Job(
        "weekly_backtest",
        "mlops.tasks.weekly_backtest",
        "0",
        "4",
        "0",
        "90-day walk-forward backtest of every champion and challenger.",
    ),
    Job(
        "daily_forecast",
        "mlops.tasks.daily_forecast",
        "0",
        "5",
        "*",
        "Forecast the next 7 days for every active series with every active model version.",
    ),
    Job(
        "daily_backtest",
        "mlops.tasks.daily_backtest",
        "0",
        "6",
        "*",
        "T-1 backtest: compare yesterday's forecasts with yesterday's sales.",
    ),
)
JOBS_BY_KEY = {job.key: job for job in JOBS}


def periodic_task_name(*, job: Job, tenant: Tenant) -> str:
    # Names are unique across the platform, so they carry the schema.
    return f"{job.key}@{tenant.schema_name}"


@transaction.atomic
def ensure_default_schedules(*, tenant: Tenant) -> list[PeriodicTask]:
    """Create the tenant's missing periodic tasks; existing ones (and people's edits) are kept."""
    if tenant.schema_name == "public":
        return []
    tasks = []
    for job in JOBS:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=job.minute,
            hour=job.hour,
            day_of_week=job.day_of_week,
            day_of_month="*",
            month_of_year="*",
            timezone=tenant.time_zone,
        )
        task, _ = PeriodicTask.objects.get_or_create(
            name=periodic_task_name(job=job, tenant=tenant),
            defaults={
                "task": job.task,
                "crontab": crontab,
                "headers": {"_schema_name": tenant.schema_name},
                "description": job.description,
            },
        )
        tasks.append(task)
    return tasks
