"""Celery entry points of experiments: they load ids and call one service."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django_fsm import TransitionNotAllowed

from config.celery import app, in_this_tenant
from experiments.models import ModelExperiment

logger = logging.getLogger(__name__)

# One version (a department's, or the global one) trains and is judged on up to two years of
# sales; past the soft limit the task stops instead of hanging a worker.
START_SOFT_TIME_LIMIT = 3 * 55 * 60
START_TIME_LIMIT = 3 * 60 * 60


def _experiment_and_actor(experiment_id: int, actor_id: int):
    return ModelExperiment.objects.get(pk=experiment_id), get_user_model().objects.get(pk=actor_id)


@app.task(
    bind=True,
    name="experiments.tasks.start_experiment",
    acks_late=True,
    reject_on_worker_lost=True,  # a worker killed mid-start hands the start back: it resumes
    max_retries=None,
)
def start_experiment(self, experiment_id: int, actor_id: int) -> dict:
    """Start experiment `experiment_id` as user `actor_id` (or resume a start that stopped
    half-way): its versions train as one task each on whichever workers are free, and a last
    task links them when all are in (a chord); returns its status and the segments sent."""
    from celery import chord

    from experiments import services

    experiment, actor = _experiment_and_actor(experiment_id, actor_id)
    try:
        experiment, plans = services.begin_experiment_training(experiment=experiment, actor=actor)
    except services.ExperimentStartRunningError as running:
        raise self.retry(countdown=settings.TASK_LOCK_RETRY_SECONDS) from running
    except TransitionNotAllowed as moved_on:
        # Started and moved on (shadow testing, completed) by the time this delivery came.
        return {"experiment": experiment.pk, "status": experiment.status, "skipped": str(moved_on)}
    finish = in_this_tenant(finish_experiment_training.si(experiment.pk, actor_id))
    if plans:
        segments = [
            in_this_tenant(train_experiment_segment.si(experiment.pk, actor_id, plan.segment))
            for plan in plans
        ]
        chord(segments)(finish)
    else:  # trained before a lost worker linked them, or a second delivery: link (or nothing)
        finish.delay()
    return {
        "experiment": experiment.pk,
        "status": experiment.status,
        "segments": [plan.segment for plan in plans],
    }


@app.task(
    bind=True,
    name="experiments.tasks.train_experiment_segment",
    acks_late=True,
    reject_on_worker_lost=True,  # a worker killed mid-training hands the version back
    ignore_result=False,  # a chord counts its tasks through their results
    soft_time_limit=START_SOFT_TIME_LIMIT,
    time_limit=START_TIME_LIMIT,
    max_retries=None,
)
def train_experiment_segment(self, experiment_id: int, actor_id: int, segment: str) -> dict:
    """Train experiment `experiment_id`'s version of `segment` (once, whatever the
    deliveries). A retrain that fails is recorded in its log and named by the chord's last task;
    anything else that stops it is recorded there too, so that the chord always finishes."""
    from experiments import services

    experiment, actor = _experiment_and_actor(experiment_id, actor_id)
    try:
        log = services.train_experiment_segment(experiment=experiment, actor=actor, segment=segment)
    except services.ExperimentStartRunningError as running:
        raise self.retry(countdown=settings.TASK_LOCK_RETRY_SECONDS) from running
    except Exception as error:  # noqa: BLE001 - the experiment must learn of it, not hang
        logger.exception("Experiment #%s: training %s stopped", experiment_id, segment)
        return {"experiment": experiment_id, "segment": segment, "error": repr(error)}
    return {
        "experiment": experiment_id,
        "segment": segment,
        "log": log.pk if log else None,
        "status": log.status if log else None,
    }


@app.task(
    bind=True,
    name="experiments.tasks.finish_experiment_training",
    acks_late=True,
    max_retries=None,
)
def finish_experiment_training(self, experiment_id: int, actor_id: int) -> dict:
    """Link experiment `experiment_id`'s trained versions, or record which failed and why
    (once, whatever the deliveries); returns its status. A twin delivery of a segment may have
    counted towards the chord while it still trains: then this waits for it."""
    from experiments import services

    experiment, actor = _experiment_and_actor(experiment_id, actor_id)
    try:
        experiment, failed = services.finish_experiment_training(experiment=experiment, actor=actor)
    except services.ExperimentStartRunningError as running:
        raise self.retry(countdown=settings.TASK_LOCK_RETRY_SECONDS) from running
    return {
        "experiment": experiment.pk,
        "status": experiment.status,
        "versions": list(experiment.model_versions.values_list("pk", flat=True)),
        "failed": failed,
    }


@app.task(name="experiments.tasks.compute_experiment_results", acks_late=True)
def compute_experiment_results(experiment_id: int) -> dict:
    """Compute and store the results of experiment `experiment_id`; returns when they were
    computed (None for a completed or deleted experiment)."""
    from experiments.stored_results import store_experiment_results

    experiment = ModelExperiment.objects.filter(pk=experiment_id).first()
    stored = store_experiment_results(experiment=experiment) if experiment else None
    return {
        "experiment": experiment_id,
        "computed_at": stored.computed_at.isoformat() if stored else None,
    }
