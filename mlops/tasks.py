"""Celery entry points of the registry: they load ids, call one service, and return a summary."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from config.celery import app, in_this_tenant
from tenants.selectors import tenant_today

# A retrain reads two years of sales, fits, and refits both recipes over the evaluation
# windows; past the soft limit the retrain fails (and says so in its log) instead of hanging.
RETRAIN_SOFT_TIME_LIMIT = 55 * 60
RETRAIN_TIME_LIMIT = 60 * 60


@app.task(
    bind=True,
    name="mlops.tasks.retrain_model",
    acks_late=True,
    reject_on_worker_lost=True,  # a worker killed mid-retrain hands the retrain back
    soft_time_limit=RETRAIN_SOFT_TIME_LIMIT,
    time_limit=RETRAIN_TIME_LIMIT,
    max_retries=None,
)
def retrain_model(self, log_id: int) -> dict:
    """Run the queued retrain `log_id` (once, whatever the deliveries); returns its outcome."""
    from mlops.services.retraining import run_queued_retrain

    result = run_queued_retrain(log_id=log_id)
    if result.busy:  # another retrain of this model runs in this tenant right now
        raise self.retry(countdown=settings.TASK_LOCK_RETRY_SECONDS)
    return result.as_dict()


@app.task(name="mlops.tasks.weekly_retrain")
def weekly_retrain() -> list[int]:
    """Queue a scheduled retrain (a refresh) of every champion due for one, counting the days
    to the job's next run; returns log ids."""
    from mlops.schedules import days_to_next_run
    from mlops.services import queue_scheduled_retrains

    next_run_in_days = days_to_next_run("weekly_retrain")
    return [log.pk for log in queue_scheduled_retrains(next_run_in_days=next_run_in_days)]


@app.task(name="mlops.tasks.daily_forecast", acks_late=True)
def daily_forecast() -> dict:
    """Forecast the next 7 days from today (in the tenant's time zone); returns the counts."""
    from mlops.services import forecast_next_days

    summary = forecast_next_days(day=tenant_today())
    return {
        "day": summary.day.isoformat(),
        "active_series": summary.active_series,
        "forecast_rows": summary.forecast_rows,
        "shadow_rows": summary.shadow_rows,
    }


# A walk-forward refits the recipe at 13 weekly cutoffs on up to two years of sales each.
BACKTEST_SOFT_TIME_LIMIT = 110 * 60
BACKTEST_TIME_LIMIT = 120 * 60


@app.task(name="mlops.tasks.daily_backtest", acks_late=True)
def daily_backtest() -> dict:
    """T-1 backtest of yesterday (in the tenant's time zone), then the daily judging of every
    challenger and shadow on it; returns the versions scored and the verdicts."""
    from datetime import timedelta

    from mlops.services import backtest_yesterday
    from mlops.services.judging import judge_waiting_versions

    day = tenant_today() - timedelta(days=1)
    rows = backtest_yesterday(day=day)
    return {
        "day": day.isoformat(),
        "versions": [row.model_version_id for row in rows],
        "points": sum(row.n_points for row in rows),
        "missing": sum(row.n_missing for row in rows),
        "judged": [judgement.as_dict() for judgement in judge_waiting_versions(day=day)],
    }


@app.task(name="mlops.tasks.daily_canary_evaluation", acks_late=True)
def daily_canary_evaluation() -> dict:
    """Judge every running or paused canary on yesterday (in the tenant's time zone), after
    the T-1 backtest: roll back, next step, promote or hold; returns each decision."""
    from datetime import timedelta

    from mlops.services.rollout_judging import judge_canaries

    day = tenant_today() - timedelta(days=1)
    return {
        "day": day.isoformat(),
        "decisions": [decision.as_dict() for decision in judge_canaries(day=day)],
    }


@app.task(name="mlops.tasks.daily_drift_detection", acks_late=True)
def daily_drift_detection() -> list[dict]:
    """Check every champion for drift (alert and emergency retrain on drift); returns each
    check's findings."""
    from mlops.services import detect_drift_for_champions

    return [result.as_dict() for result in detect_drift_for_champions()]


@app.task(name="mlops.tasks.weekly_backtest")
def weekly_backtest() -> list[int]:
    """Queue the 90-day walk-forward of every champion and of each challenger of another recipe
    (`weekly_backtest_versions`), one task each (so that more workers finish sooner); returns
    their version ids."""
    from mlops.services.backtesting import weekly_backtest_versions

    version_ids = [version.pk for version in weekly_backtest_versions()]
    for version_id in version_ids:
        queue_walk_forward(version_id)
    return version_ids


def queue_walk_forward(version_id: int) -> None:
    """Send version `version_id`'s walk-forward to a worker, stamped with when it was asked for."""
    backtest_version.delay(version_id, requested_at=timezone.now().isoformat())


@app.task(bind=True, name="mlops.tasks.backtest_version", acks_late=True, max_retries=None)
def backtest_version(self, version_id: int, requested_at: str | None = None) -> dict:
    """Start version `version_id`'s walk-forward over the last 90 days: one task per weekly
    window (or per warm-started chain of windows) on whichever workers are free, and one that
    stores them together when the last is in (a chord); returns the run and its window count.

    Runs once per request whatever the deliveries: a request answered by a run asked for at
    or after it, or while one runs, starts nothing."""
    from celery import chord

    from mlops.locks import walk_forward_lock
    from mlops.models import ModelVersion
    from mlops.services.walk_forward_runs import start_walk_forward_run

    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        return {"version": version_id, "windows": 0, "skipped": "version no longer exists"}
    asked = timezone.datetime.fromisoformat(requested_at) if requested_at else timezone.now()
    with walk_forward_lock(version_id) as acquired:
        if not acquired:  # another delivery of a walk-forward of this version is starting one
            raise self.retry(countdown=settings.TASK_LOCK_RETRY_SECONDS)
        run = start_walk_forward_run(version=version, requested_at=asked)
    if run is None:
        return {"version": version_id, "windows": 0, "skipped": "already run"}
    chains = [in_this_tenant(backtest_windows.si(run.pk, chain)) for chain in run.chains()]
    chord(chains)(in_this_tenant(finish_walk_forward.si(run.pk)))
    return {"version": version_id, "run": run.pk, "windows": run.n_windows}


@app.task(
    bind=True,
    name="mlops.tasks.backtest_windows",
    acks_late=True,
    reject_on_worker_lost=True,  # a worker killed mid-window hands it back
    ignore_result=False,  # a chord counts its tasks through their results
    soft_time_limit=BACKTEST_SOFT_TIME_LIMIT,
    time_limit=BACKTEST_TIME_LIMIT,
    max_retries=None,
)
def backtest_windows(self, run_id: int, cutoffs: list[str]) -> dict:
    """Fit and score windows of walk-forward run `run_id`: one, or one warm-started chain (once,
    whatever the deliveries); a failure fails the whole run, so that none of it is stored."""
    import datetime as dt

    from mlops.locks import job_lock
    from mlops.models.walk_forward import WalkForwardRun
    from mlops.services.walk_forward_runs import fail_walk_forward_run, run_walk_forward_windows

    run = WalkForwardRun.objects.select_related("model_version").get(pk=run_id)
    with job_lock("walk-forward-windows", str(run_id), cutoffs[0]) as acquired:
        if not acquired:  # these windows' twin delivery runs them right now
            raise self.retry(countdown=settings.TASK_LOCK_RETRY_SECONDS)
        try:
            windows = run_walk_forward_windows(
                run=run, cutoffs=[dt.date.fromisoformat(cutoff) for cutoff in cutoffs]
            )
        except Exception as error:
            chain = f" (a chain of {len(cutoffs)})" if len(cutoffs) > 1 else ""
            fail_walk_forward_run(
                run=run, error=f"The window from {cutoffs[0]}{chain} failed: {error!r}"
            )
            raise
    return {"run": run_id, "cutoffs": cutoffs, "done": len(windows or [])}


@app.task(bind=True, name="mlops.tasks.finish_walk_forward", acks_late=True, max_retries=None)
def finish_walk_forward(self, run_id: int) -> dict:
    """Store every window of walk-forward run `run_id` together and warn when its latest week
    degraded; returns the stored window count. A twin delivery of a window may have counted
    towards the chord before the last window was in: then it waits for the rest."""
    from mlops.locks import walk_forward_lock
    from mlops.models.walk_forward import WalkForwardRun
    from mlops.services.walk_forward_runs import fail_if_timed_out, finish_walk_forward_run

    run = WalkForwardRun.objects.select_related("model_version").get(pk=run_id)
    with walk_forward_lock(run.model_version_id) as acquired:
        stored = finish_walk_forward_run(run=run) if acquired else None
    if stored is None:
        if fail_if_timed_out(run=run):
            return {"run": run_id, "windows": 0, "failed": "windows never came back"}
        raise self.retry(countdown=min(5, settings.TASK_LOCK_RETRY_SECONDS))
    return {"run": run_id, "windows": len(stored)}
