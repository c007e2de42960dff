"""Celery entry points of experiments: they load ids and call one service."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django_fsm import TransitionNotAllowed

from config.celery import app
from experiments.models import ModelExperiment

# Training a segmentation trains (and judges) one model per department on up to two years of
# sales; past the soft limit the task stops instead of hanging a worker.
START_SOFT_TIME_LIMIT = 3 * 55 * 60
START_TIME_LIMIT = 3 * 60 * 60


@app.task(
    bind=True,
    name="experiments.tasks.start_experiment",
    acks_late=True,
    reject_on_worker_lost=True,  # a worker killed mid-start hands the start back: it resumes
    soft_time_limit=START_SOFT_TIME_LIMIT,
    time_limit=START_TIME_LIMIT,
    max_retries=None,
)
def start_experiment(self, experiment_id: int, actor_id: int) -> dict:
    """Start experiment `experiment_id` as user `actor_id` (train its versions, or resume a
    start that stopped half-way); returns its status and the versions it trained."""
    from experiments import services

    experiment = ModelExperiment.objects.get(pk=experiment_id)
    actor = get_user_model().objects.get(pk=actor_id)
    try:
        experiment = services.start_experiment(experiment=experiment, actor=actor)
    except services.ExperimentStartRunningError as running:
        raise self.retry(countdown=settings.TASK_LOCK_RETRY_SECONDS) from running
    except TransitionNotAllowed as moved_on:
        # Started and moved on (shadow testing, completed) by the time this delivery came.
        return {"experiment": experiment.pk, "status": experiment.status, "skipped": str(moved_on)}
    return {
        "experiment": experiment.pk,
        "status": experiment.status,
        "versions": list(experiment.model_versions.values_list("pk", flat=True)),
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
