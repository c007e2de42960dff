"""A queued start trains the experiment on a real Celery worker, in the tenant's schema."""

import time

import pytest

from experiments.models import ModelExperiment
from experiments.services import queue_start_experiment
from forecasting.synthetic import generate_sales
from mlops.models import ModelVersion, Trigger
from mlops.services import retrain_forecast_model
from tests.experiments.factories import ExperimentFactory
from tests.mlops.factories import load_sales
from tests.processes import running_worker

SALES = {"stores": 4, "products": 10, "days": 240, "seed": 5}


def wait_for(condition, *, timeout: float = 120.0, worker=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
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
