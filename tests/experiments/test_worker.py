"""A queued start trains the experiment on a real Celery worker, in the tenant's schema."""

import time

import pytest

from experiments.models import ModelExperiment
from experiments.services import queue_start_experiment, start_interrupted
from forecasting.synthetic import generate_sales
from mlops.models import ModelRetrainingLog, ModelVersion, Trigger
from mlops.services import retrain_forecast_model
from tests.experiments.factories import ExperimentFactory
from tests.mlops.factories import load_sales
from tests.processes import purge_queue, running_worker, start_worker

SALES = {"stores": 4, "products": 10, "days": 240, "seed": 5}


def wait_for(condition, *, timeout: float = 120.0, interval: float = 0.5, worker=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out; worker said:\n{worker.output()[-3000:] if worker else ''}")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_queued_start_trains_the_versions_on_a_worker_as_the_person_who_started_it(
    scientist, artifact_storage, tmp_path
):
    load_sales(generate_sales(**SALES))
    champion = retrain_forecast_model(
        trigger=Trigger.MANUAL, algorithm="seasonal_naive", window_days=120
    ).resulting_version
    experiment = ExperimentFactory(
        status=ModelExperiment.Status.APPROVED, configuration={"segments": ["Electronics"]}
    )

    # A production-like worker: DEBUG off, artifacts in the test's own folder.
    with running_worker(
        tmp_path,
        MEDIA_ROOT=str(artifact_storage),
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="experiments-worker-test-secret",
    ) as worker:
        # Autocommit: the task is sent as soon as the call returns.
        queue_start_experiment(experiment=experiment, actor=scientist)
        wait_for(lambda: experiment.events.count() >= 2, worker=worker)

    experiment.refresh_from_db()
    assert experiment.status == ModelExperiment.Status.IN_PROGRESS, experiment.events.last().note
    (version,) = experiment.model_versions.all()
    assert (version.segment, version.trigger, version.created_by) == (
        "department:Electronics",
        Trigger.EXPERIMENT,
        scientist,
    )
    assert version.status == ModelVersion.Status.CHALLENGER
    assert ModelVersion.objects.get(pk=champion.pk).status == ModelVersion.Status.CHAMPION
    assert [(e.to_status, e.actor_label) for e in experiment.events.all()] == [
        ("in_progress", "scientist"),
        ("in_progress", "scientist"),
    ]


def _two_department_experiment(hyperparameters: dict) -> ModelExperiment:
    """An approved segmentation of Electronics and Grocery with XGBoost's `hyperparameters`,
    on sales with a seasonal naive champion."""
    load_sales(generate_sales(**SALES))
    retrain_forecast_model(trigger=Trigger.MANUAL, algorithm="seasonal_naive", window_days=120)
    return ExperimentFactory(
        status=ModelExperiment.Status.APPROVED,
        configuration={
            "segments": ["Electronics", "Grocery"],
            "algorithm": "xgboost",
            "hyperparameters": hyperparameters,
        },
    )


def _retrains_of(experiment) -> dict[str, str]:
    logs = ModelRetrainingLog.objects.filter(trigger_metadata__experiment_id=experiment.pk)
    return dict(logs.values_list("segment", "status"))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_start_whose_worker_is_killed_mid_training_resumes_and_trains_each_version_once(
    scientist, artifact_storage, tmp_path
):
    # About 3 s of training per version on this machine: long enough to be caught
    # mid-training by a poll every 50 ms (40 trees trained between two polls).
    experiment = _two_department_experiment(
        {"n_estimators": 2500, "max_depth": 6, "calibration_windows": 1}
    )
    purge_queue()
    worker_env = {"MEDIA_ROOT": str(artifact_storage), "CELERY_VISIBILITY_TIMEOUT": "4"}
    first = start_worker(tmp_path, name="first", **worker_env)
    try:
        queue_start_experiment(experiment=experiment, actor=scientist)
        # Killed while the second version trains, the first one registered but not linked.
        wait_for(
            lambda: (
                _retrains_of(experiment)
                == {"department:Electronics": "succeeded", "department:Grocery": "running"}
            ),
            interval=0.05,
            worker=first,
        )
        first.kill()  # SIGKILL to the whole worker
    finally:
        first.stop()

    experiment.refresh_from_db()
    assert experiment.status == ModelExperiment.Status.IN_PROGRESS
    assert not experiment.model_versions.exists()
    # Not stuck: nobody trains it now, so a person may start it again (and it resumes) once
    # PostgreSQL has noticed that the killed worker's connection closed, freeing its lock.
    wait_for(lambda: start_interrupted(experiment), timeout=30)
    queue_start_experiment(experiment=experiment, actor=scientist)

    # The restart and the killed worker's own message (handed out again) both reach the second
    # worker: one resumes, the other finds the work done.
    second = start_worker(tmp_path, name="second", **worker_env)
    try:
        wait_for(lambda: experiment.model_versions.count() == 2, worker=second)
        time.sleep(6)  # past another visibility timeout: nothing may train again
    finally:
        second.stop()

    experiment.refresh_from_db()
    assert experiment.status == ModelExperiment.Status.IN_PROGRESS
    assert not start_interrupted(experiment)
    assert sorted(experiment.model_versions.values_list("segment", flat=True)) == [
        "department:Electronics",
        "department:Grocery",
    ]
    assert ModelVersion.objects.filter(trigger=Trigger.EXPERIMENT).count() == 2
    logs = ModelRetrainingLog.objects.filter(trigger_metadata__experiment_id=experiment.pk)
    assert {log.segment: (log.status, log.attempts) for log in logs} == {
        "department:Electronics": ("succeeded", 1),
        "department:Grocery": ("succeeded", 2),  # taken up again, not a second log
    }
    [interrupted] = logs.get(segment="department:Grocery").trigger_metadata["interrupted_attempts"]
    assert interrupted["attempt"] == 1
    notes = [event.note for event in experiment.events.all()]
    assert notes[0].startswith("Training 2 version(s)")
    assert notes[1].startswith("Training resumed")
    assert notes[2].startswith("Trained ") and len(notes) == 3


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_segmentation_trains_its_departments_on_two_workers_at_once(
    scientist, artifact_storage, tmp_path
):
    # About a second of training per version: the two workers, idle when the start is queued,
    # take one department each at once.
    experiment = _two_department_experiment(
        {"n_estimators": 600, "max_depth": 6, "calibration_windows": 0}
    )
    purge_queue()
    env = {"MEDIA_ROOT": str(artifact_storage)}
    workers = [start_worker(tmp_path, name=name, **env) for name in ("one", "two")]
    try:
        queue_start_experiment(experiment=experiment, actor=scientist)
        wait_for(lambda: experiment.model_versions.count() == 2, timeout=240, worker=workers[0])
    finally:
        for worker in workers:
            worker.stop()

    logs = [worker.log_path.read_text(errors="replace") for worker in workers]
    # Each worker trained one department, at the same time.
    assert all(log.count("train_experiment_segment[") >= 1 for log in logs), logs[1][-3000:]
    first, second = ModelRetrainingLog.objects.filter(
        trigger_metadata__experiment_id=experiment.pk
    ).order_by("started_at")
    assert second.started_at < first.finished_at, (first.finished_at, second.started_at)
    assert {first.segment, second.segment} == {"department:Electronics", "department:Grocery"}
    experiment.refresh_from_db()
    assert experiment.status == ModelExperiment.Status.IN_PROGRESS
    notes = [event.note for event in experiment.events.all()]
    assert notes[0].startswith("Training 2 version(s)")
    assert notes[1].startswith("Trained ") and len(notes) == 2
