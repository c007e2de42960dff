"""Celery entry points of experiments: they load ids and call one service."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from config.celery import app
from experiments.models import ModelExperiment

# Training a segmentation trains (and judges) one model per department on up to two years of
# sales; past the soft limit the task stops instead of hanging a worker.
START_SOFT_TIME_LIMIT = 3 * 55 * 60
START_TIME_LIMIT = 3 * 60 * 60


@app.task(
    name="experiments.tasks.start_experiment",
    soft_time_limit=START_SOFT_TIME_LIMIT,
    time_limit=START_TIME_LIMIT,
)
def start_experiment(experiment_id: int, actor_id: int) -> dict:
    """Start experiment `experiment_id` as user `actor_id` (train its versions); returns its
    status and the versions it trained."""
    from experiments import services

    experiment = ModelExperiment.objects.get(pk=experiment_id)
    actor = get_user_model().objects.get(pk=actor_id)
    experiment = services.start_experiment(experiment=experiment, actor=actor)
    return {
        "experiment": experiment.pk,
        "status": experiment.status,
        "versions": list(experiment.model_versions.values_list("pk", flat=True)),
    }
