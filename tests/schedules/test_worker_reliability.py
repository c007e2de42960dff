import datetime as dt
import re
import time

import pytest
from django.conf import settings
from django.test import override_settings

from alerts.models import MLAlert
from config.beat import TenantSpreadEntry, spread_seconds
from forecasting.services import import_sales
from forecasting.synthetic import generate_sales
from mlops.models import BacktestResult, ModelRetrainingLog, ModelVersion, WalkForwardRun
from mlops.services import queue_retrain
from mlops.tasks import queue_walk_forward
from tests.mlops.factories import ModelVersionFactory
from tests.processes import purge_queue, start_worker


def test_tenants_jobs_are_spread_over_the_window_and_stable_per_tenant():
    delays = {spread_seconds(f"tenant{i}", window=300) for i in range(200)}
    assert all(0 <= delay < 300 for delay in delays)
    assert len(delays) > 100  # 200 tenants spread over many different seconds
    assert spread_seconds("acme", window=300) == spread_seconds("acme", window=300)
    assert spread_seconds("acme", window=0) == 0


@override_settings(SCHEDULE_SPREAD_SECONDS=300)
def test_beat_sends_a_tenants_job_with_its_tenants_delay(tenant):
    from django_celery_beat.models import PeriodicTask

    entry = TenantSpreadEntry(PeriodicTask.objects.get(name="daily_forecast@acme"))
    assert entry.options["headers"]["_schema_name"] == "acme"
    assert entry.options["countdown"] == spread_seconds("acme", window=300)


def _wait(predicate, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_retrain_whose_worker_is_killed_runs_to_completion_exactly_once(tenant, tmp_path):
    import_sales(source=generate_sales(stores=4, products=15, days=400, seed=11))
    purge_queue()
    fast_redelivery = {"CELERY_VISIBILITY_TIMEOUT": "5"}
    first = start_worker(tmp_path, name="first", **fast_redelivery)
    try:
        small = {"n_estimators": 60, "max_depth": 4, "calibration_windows": 2}
        log = queue_retrain(trigger="manual", algorithm="xgboost", hyperparameters=small)
        assert _wait(
            lambda: ModelRetrainingLog.objects.get(pk=log.pk).status == "running", timeout=60
        ), first.output()[-3000:]
        first.kill()  # SIGKILL to the whole worker, mid-retrain
    finally:
        first.stop()

    log.refresh_from_db()
    assert log.status == "running" and log.attempts == 1, log.error
    assert not ModelVersion.objects.exists()

    second = start_worker(tmp_path, name="second", **fast_redelivery)
    try:
        finished = _wait(
            lambda: ModelRetrainingLog.objects.get(pk=log.pk).status in ("succeeded", "failed"),
            timeout=240,
            interval=0.5,
        )
        assert finished, second.output()[-4000:]
        time.sleep(8)  # past another visibility timeout: no second run may follow
    finally:
        second.stop()

    log.refresh_from_db()
    assert log.status == "succeeded", log.error
    assert ModelVersion.objects.count() == 1
    assert log.resulting_version == ModelVersion.objects.get()
    assert log.attempts == 2
    [interrupted] = log.trigger_metadata["interrupted_attempts"]
    assert interrupted["attempt"] == 1


@pytest.mark.nodb
def test_every_task_stops_before_redis_would_hand_its_message_to_a_second_worker():
    from config.celery import app

    app.loader.import_default_modules()
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    ours = {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}
    assert "experiments.tasks.start_experiment" in ours
    for name, task in ours.items():
        limit = task.time_limit or app.conf.task_time_limit
        assert limit and limit < visibility, (name, limit, visibility)
    # A message left by a dead worker is looked for at least ten times per timeout.
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["unacked_restore_interval"] <= visibility / 10
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["unacked_restore_throttle"] == 1


def _degrading_sales():
    """Sales whose last week sells three times as much: its walk-forward window degrades."""
    frame = generate_sales(stores=3, products=8, days=200, seed=3)
    last_week = frame["date"] > frame["date"].max() - dt.timedelta(days=7)
    frame.loc[last_week, "quantity"] *= 3
    return frame


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_walk_forward_spreads_its_windows_over_two_workers_and_is_stored_once(tenant, tmp_path):
    import_sales(source=_degrading_sales())
    version = ModelVersionFactory(
        algorithm="xgboost",
        hyperparameters={"n_estimators": 400, "max_depth": 6, "calibration_windows": 0},
        status=ModelVersion.Status.CHAMPION,
    )
    purge_queue()
    # The windows take longer than this: Redis hands some of their messages to the other
    # worker while the first still runs them.
    short = {"CELERY_VISIBILITY_TIMEOUT": "2"}
    workers = [start_worker(tmp_path, name=name, **short) for name in ("one", "two")]
    runs = WalkForwardRun.objects.filter(model_version=version)
    try:
        queue_walk_forward(version.pk)
        queue_walk_forward(version.pk)  # asked twice: the second finds the first running
        done = runs.filter(status=WalkForwardRun.Status.SUCCEEDED)
        assert _wait(done.exists, timeout=240, interval=0.5), workers[0].output()[-3000:]
        time.sleep(6)  # past more visibility timeouts: no second run may follow
    finally:
        for worker in workers:
            worker.stop()

    logs = [worker.log_path.read_text(errors="replace") for worker in workers]
    # Both workers ran windows of the one run.
    assert all("mlops.tasks.backtest_windows[" in log for log in logs), logs[1][-3000:]
    [run] = runs
    assert run.windows.count() == 13 and run.finished_at is not None
    finishes = re.findall(
        r"finish_walk_forward\[[0-9a-f-]+\] succeeded in [^:]+: (.*)", "".join(logs)
    )
    assert finishes == [f"{{'run': {run.pk}, 'windows': 13}}"], finishes
    assert BacktestResult.objects.filter(model_version=version).count() == 13
    # Its one run raised one warning about the last week, not one per delivery.
    [alert] = MLAlert.objects.filter(alert_type="backtest_degradation")
    assert alert.occurrences == 1
