"""The registry's Celery entry points: weekly retrains queued per champion, a retrain run."""

import pytest
from django.core.exceptions import PermissionDenied

from mlops.models import ModelRetrainingLog, ModelVersion, Trigger
from mlops.services import queue_retrain
from mlops.tasks import retrain_model, weekly_retrain
from tests.mlops.factories import ModelVersionFactory

Status = ModelVersion.Status


def test_weekly_retrain_queues_one_scheduled_retrain_per_champion_once(
    django_capture_on_commit_callbacks,
):
    ModelVersionFactory(status=Status.CHAMPION)
    ModelVersionFactory(status=Status.CHAMPION, segment="department:Electronics")
    ModelVersionFactory(status=Status.CHALLENGER, segment="department:Grocery")

    with django_capture_on_commit_callbacks(execute=False) as queued:
        ids = weekly_retrain()
        again = weekly_retrain()

    logs = ModelRetrainingLog.objects.filter(pk__in=ids).order_by("segment")
    assert [(log.segment, log.trigger, log.status) for log in logs] == [
        ("department:Electronics", "scheduled", "queued"),
        ("global", "scheduled", "queued"),
    ]
    # A second run while those wait adds nothing: one retrain per model at a time.
    assert sorted(again) == sorted(ids)
    assert len(queued) == 2
    assert ModelRetrainingLog.objects.count() == 2


def test_a_viewer_may_not_request_a_retrain(viewer):
    with pytest.raises(PermissionDenied):
        queue_retrain(trigger=Trigger.MANUAL, requested_by=viewer)
    assert not ModelRetrainingLog.objects.exists()


def test_retrain_task_runs_the_queued_retrain(sales, scientist, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        log = queue_retrain(
            trigger=Trigger.MANUAL, algorithm="seasonal_naive", requested_by=scientist
        )

    result = retrain_model(log.pk)

    log.refresh_from_db()
    assert result["status"] == log.status == "succeeded"
    assert log.outcome == "champion (first)"
    assert log.resulting_version.created_by == scientist
    assert log.attempts == 1
