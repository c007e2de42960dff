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


@pytest.mark.parametrize(
    ("age", "next_run_in_days", "due"),
    [
        (7, 0, True),  # as old as the period: due whenever the job runs
        (6, 0, False),  # no next run counted: it waits for the period
        (6, 7, True),  # a week from now it would be 13 days old
        (3, 7, True),  # promoted mid-week: refreshed on the first Sunday it can be judged
        (2, 7, False),  # served too few days for a refresh to be judged on
        (0, 7, False),
    ],
)
def test_a_champion_is_due_when_it_would_be_older_than_the_period_by_the_next_run(
    age, next_run_in_days, due
):
    import datetime as dt

    from mlops.services.retraining import champions_due_for_refresh
    from tests.forecasting.factories import ProductFactory, SaleFactory, StoreFactory

    latest = dt.date(2026, 3, 7)
    SaleFactory(store=StoreFactory(), product=ProductFactory(), date=latest, quantity=3)
    champion = ModelVersionFactory(
        status=Status.CHAMPION, training_end=latest - dt.timedelta(days=age)
    )

    assert (champion in champions_due_for_refresh(next_run_in_days=next_run_in_days)) is due


def test_the_weekly_retrain_counts_a_week_to_its_next_run_and_none_when_disabled(tenant):
    import datetime as dt
    import zoneinfo

    from django_celery_beat.models import PeriodicTask

    from mlops.schedules import JOBS_BY_KEY, days_to_next_run, periodic_task_name

    zone = zoneinfo.ZoneInfo(tenant.time_zone)
    sunday_run = dt.datetime(2026, 3, 8, 2, 0, 1, tzinfo=zone)
    wednesday = dt.datetime(2026, 3, 11, 12, 0, tzinfo=zone)

    assert days_to_next_run("weekly_retrain", now=sunday_run) == 7
    assert days_to_next_run("weekly_retrain", now=wednesday) == 4

    PeriodicTask.objects.filter(
        name=periodic_task_name(job=JOBS_BY_KEY["weekly_retrain"], tenant=tenant)
    ).update(enabled=False)
    assert days_to_next_run("weekly_retrain", now=sunday_run) == 0
