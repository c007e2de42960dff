"""The periodic jobs every tenant has, as django-celery-beat rows tagged with the tenant's schema."""

import json
import zoneinfo
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone
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
    results_url: str  # admin changelist where a run's outcome shows up


# Times are in the tenant's own time zone (CrontabSchedule.timezone).
JOBS = (
    Job(
        key="weekly_retrain",
        task="mlops.tasks.weekly_retrain",
        minute="0",
        hour="2",
        day_of_week="0",
        description="Retrain every model on recent sales (trigger: scheduled); "
        "promote if it clears the gate.",
        results_url="admin:mlops_modelretraininglog_changelist",
    ),
    Job(
        key="daily_drift_detection",
        task="mlops.tasks.daily_drift_detection",
        minute="0",
        hour="3",
        day_of_week="*",
        description="Compare recent champion error with its baseline; on drift alert and retrain.",
        results_url="admin:alerts_mlalert_changelist",
    ),
    Job(
        key="weekly_backtest",
        task="mlops.tasks.weekly_backtest",
        minute="0",
        hour="4",
        day_of_week="0",
        description="90-day walk-forward backtest of every champion and of each challenger of "
        "another recipe.",
        results_url="admin:mlops_backtestresult_changelist",
    ),
    Job(
        key="daily_forecast",
        task="mlops.tasks.daily_forecast",
        minute="0",
        hour="5",
        day_of_week="*",
        description="Forecast the next 7 days for every active series with every active model.",
        results_url="admin:forecasting_forecast_changelist",
    ),
    Job(
        key="daily_backtest",
        task="mlops.tasks.daily_backtest",
        minute="0",
        hour="6",
        day_of_week="*",
        description="T-1 backtest: compare yesterday's forecasts with yesterday's sales.",
        results_url="admin:mlops_backtestresult_changelist",
    ),
    Job(
        key="daily_canary_evaluation",
        task="mlops.tasks.daily_canary_evaluation",
        minute="30",
        hour="6",
        day_of_week="*",
        description="Judge every canary rollout on yesterday's sales: roll back on a breached "
        "guardrail, else the next step or promotion once a step has baked.",
        results_url="admin:mlops_rolloutplan_changelist",
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
    # Beat reads headers as JSON text; the schema header makes the job run in the tenant.
    headers = json.dumps({"_schema_name": tenant.schema_name})
    for job in JOBS:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=job.minute,
            hour=job.hour,
            day_of_week=job.day_of_week,
            day_of_month="*",
            month_of_year="*",
            timezone=tenant.time_zone,
        )
        task, created = PeriodicTask.objects.get_or_create(
            name=periodic_task_name(job=job, tenant=tenant),
            defaults={
                "task": job.task,
                "crontab": crontab,
                "headers": headers,
                "description": job.description,
            },
        )
        if not created and (task.headers, task.task) != (headers, job.task):
            # Repair what routes the job; its timing and enabling are people's to keep.
            task.headers, task.task = headers, job.task
            task.save()
        tasks.append(task)
    return tasks


class TenantSchedule(PeriodicTask):
    """A tenant's view of its own beat rows (the rows live in the public schema)."""

    class Meta:
        proxy = True
        app_label = "mlops"
        verbose_name = "schedule"
        verbose_name_plural = "schedules"


def tenant_schedules(*, tenant: Tenant):
    """The periodic tasks of one tenant: named `<job>@<schema>`, sent with the schema in headers."""
    return TenantSchedule.objects.filter(name__endswith=f"@{tenant.schema_name}").select_related(
        "crontab"
    )


def job_for(task: PeriodicTask) -> Job | None:
    return JOBS_BY_KEY.get(task.name.split("@", 1)[0])


def next_run_at(task: PeriodicTask, *, now: datetime | None = None) -> datetime | None:
    """When Beat will next send this task (aware datetime), or None if disabled or not a crontab."""
    if not task.enabled or task.crontab is None:
        return None
    now = now or timezone.now()
    schedule = task.crontab.schedule  # crontab evaluated in the schedule's own time zone
    local_now = now.astimezone(zoneinfo.ZoneInfo(str(task.crontab.timezone)))
    schedule.nowfun = lambda: local_now
    return local_now + schedule.remaining_estimate(local_now)


def days_to_next_run(key: str, *, now: datetime | None = None) -> int:
    """Days from now to the current tenant's next run of job `key` (by its local dates), or 0
    when it has no next run (disabled, or not on a crontab). A replay's sandbox, whose own rows
    are disabled, runs on its source's schedule (mlops.services.replay)."""
    tenant = getattr(connection, "tenant", None)
    source = getattr(tenant, "replay_of", None)
    schema_name = source.schema_name if source is not None else connection.schema_name
    task = (
        PeriodicTask.objects.filter(name=f"{key}@{schema_name}").select_related("crontab").first()
    )
    now = now or timezone.now()
    upcoming = next_run_at(task, now=now) if task is not None else None
    if upcoming is None:
        return 0
    return (upcoming.date() - now.astimezone(upcoming.tzinfo).date()).days


def set_crontab(
    *,
    task: PeriodicTask,
    minute: str,
    hour: str,
    day_of_week: str,
    day_of_month: str = "*",
    month_of_year: str = "*",
    time_zone: str,
) -> PeriodicTask:
    """Point a task at the crontab with these fields, never editing a crontab row others share."""
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_week=day_of_week,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        timezone=time_zone,
    )
    task.crontab = crontab
    task.save()
    return task


def run_job_now(*, job: Job, tenant: Tenant) -> str:
    """Queue one run of a job in the tenant's schema now; returns the Celery task id."""
    from config.celery import app

    result = app.send_task(job.task, headers={"_schema_name": tenant.schema_name})
    return result.id
