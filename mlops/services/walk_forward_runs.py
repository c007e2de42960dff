"""A version's walk-forward spread over workers: one task per window, the results stored together
when the last window is in (a Celery chord), or not at all when one fails."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from forecasting.families.base import WarmStart
from mlops.models import BacktestResult, ModelVersion
from mlops.models.walk_forward import WalkForwardRun, WalkForwardWindow
from mlops.services.backtesting import (
    check_backtest_degradation,
    store_walk_forward,
    walk_forward_plan,
    walk_forward_warm_start,
    walk_forward_windows,
    window_row,
)

logger = logging.getLogger(__name__)

Status = WalkForwardRun.Status

# A run must be done within the time one worker was given for a whole walk-forward: past it, a
# window that never came back (its worker killed at its hard time limit) fails the run, and a
# new request may start another.
RUN_TIME_LIMIT = dt.timedelta(hours=2)


def start_walk_forward_run(
    *, version: ModelVersion, requested_at: dt.datetime, end: dt.date | None = None
) -> WalkForwardRun | None:
    """Open a run of the version's 90-day walk-forward up to `end` (default: the latest sales
    day) with one pending window per weekly cutoff; returns it, or None when the request is
    served already: a run of this version is running, or one started at or after
    `requested_at` (it read the sales the request asked about) has not failed. Raises
    ValueError when there are no sales.

    Started, not asked for: a request asked a moment after another, whose delivery is held back
    (a lock retry, a message handed out again) until the other's run has finished, is answered
    by that run all the same."""
    runs = WalkForwardRun.objects.filter(model_version=version)
    for running in runs.filter(status=Status.RUNNING):
        fail_if_timed_out(run=running)
    answered = runs.exclude(status=Status.FAILED).filter(started_at__gte=requested_at)
    if answered.exists() or runs.filter(status=Status.RUNNING).exists():
        return None
    cutoffs, end = walk_forward_plan(end=end)
    warm_start = walk_forward_warm_start(version)
    try:
        with transaction.atomic():
            return WalkForwardRun.objects.create(
                model_version=version,
                requested_at=requested_at,
                cutoffs=[cutoff.isoformat() for cutoff in cutoffs],
                end=end,
                warm_start=warm_start is not None,
                warm_start_every=1 if warm_start is None else warm_start.full_refit_every,
            )
    except IntegrityError:  # another delivery opened one in between: that run serves it
        return None


def run_walk_forward_windows(
    *, run: WalkForwardRun, cutoffs: list[dt.date]
) -> list[WalkForwardWindow] | None:
    """Fit and score the run's windows from `cutoffs` (one window, or one warm-started chain of
    them) and keep their results on the run (not yet as backtest results); windows done
    already are returned as they are. Returns None when the run is over (failed: its other
    windows need not run)."""
    if run.status != Status.RUNNING:
        return None
    done = list(run.windows.filter(cutoff__in=cutoffs))
    if len(done) == len(cutoffs):
        return done
    warm_start = WarmStart(full_refit_every=run.warm_start_every) if run.warm_start else None
    end = min(cutoffs[-1] + dt.timedelta(days=run.horizon - 1), run.end)
    results = {
        result.start: result
        for result in walk_forward_windows(
            version=run.model_version,
            window=run.horizon,
            end=end,
            cutoffs=cutoffs,
            warm_start=warm_start,
        )
    }
    rows = {
        cutoff: _json_row(window_row(results[cutoff], warm_start=warm_start))
        if cutoff in results
        else None
        for cutoff in cutoffs
    }
    WalkForwardWindow.objects.bulk_create(
        [
            WalkForwardWindow(run=run, cutoff=cutoff, result=row, skipped=row is None)
            for cutoff, row in rows.items()
        ],
        ignore_conflicts=True,  # a twin delivery kept them first: the same results
    )
    return list(run.windows.filter(cutoff__in=cutoffs))


def finish_walk_forward_run(*, run: WalkForwardRun) -> list[BacktestResult] | None:
    """Store every window of the run as backtest results in one transaction, mark it succeeded
    and warn when its latest week degraded; returns the stored rows. Returns None, storing
    nothing, while windows are missing; a run that is over already stores nothing again."""
    with transaction.atomic():
        run = WalkForwardRun.objects.select_for_update().get(pk=run.pk)
        if run.status != Status.RUNNING:
            return []
        windows = list(run.windows.order_by("cutoff"))
        if len(windows) < run.n_windows:
            return None
        rows = [_row_from_json(window.result) for window in windows if not window.skipped]
        stored = store_walk_forward(version=run.model_version, rows=rows)
        run.succeed()
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "finished_at"])
    check_backtest_degradation(version=run.model_version)
    return stored


@transaction.atomic
def fail_walk_forward_run(*, run: WalkForwardRun, error: str) -> WalkForwardRun:
    """End a running run as failed, saying why; its windows' results are never stored. A run
    that is over already stays as it is. Returns the run."""
    run = WalkForwardRun.objects.select_for_update().get(pk=run.pk)
    if run.status == Status.RUNNING:
        run.fail()
        run.error = error[:2000]
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "error", "finished_at"])
        logger.warning("Walk-forward run %s of %s failed: %s", run.pk, run.model_version, error)
    return run


def fail_if_timed_out(*, run: WalkForwardRun) -> bool:
    """Fail a run still waiting for windows past its time limit; returns whether it did."""
    if run.status != Status.RUNNING or timezone.now() - run.started_at < RUN_TIME_LIMIT:
        return False
    fail_walk_forward_run(run=run, error=_timed_out(run))
    return True


def _timed_out(run: WalkForwardRun) -> str:
    done = run.windows.count()
    return (
        f"Only {done} of {run.n_windows} windows came back within "
        f"{RUN_TIME_LIMIT.total_seconds() / 3600:.0f} h."
    )


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **row,
        "window_start": row["window_start"].isoformat(),
        "window_end": row["window_end"].isoformat(),
    }


def _row_from_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **row,
        "window_start": dt.date.fromisoformat(row["window_start"]),
        "window_end": dt.date.fromisoformat(row["window_end"]),
    }
