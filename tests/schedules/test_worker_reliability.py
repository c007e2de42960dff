import time

import pytest
from django.test import override_settings

from config.beat import TenantSpreadEntry, spread_seconds
from forecasting.services import import_sales
from forecasting.synthetic import generate_sales
from mlops.models import ModelRetrainingLog, ModelVersion
from mlops.services import queue_retrain
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
