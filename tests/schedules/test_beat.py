import time
import uuid

import pytest
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from tests.processes import running_worker, start_beat
from tests.tenancy import PASSWORD

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _probe_value(client, key):
    value = client.get(f"schema-probe:{key}")
    return value.decode() if value else None


def _wait_for_probe(client, key, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := _probe_value(client, key):
            return value
        time.sleep(0.25)
    return None


def test_beat_runs_a_tenant_schedule_in_its_schema_until_disabled_in_the_admin(tenant, tmp_path):
    key = uuid.uuid4().hex
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
    task = PeriodicTask.objects.create(
        name="probe@acme",
        task="config.tasks.schema_probe",
        interval=every_second,
        kwargs=f'{{"key": "{key}"}}',
        headers='{"_schema_name": "acme"}',
    )
    manager = get_user_model().objects.create_user(
        "maria", "m@example.com", PASSWORD, is_staff=True
    )
    manager.groups.add(Group.objects.get(name="ml_manager"))
    store = redis.Redis.from_url(settings.REDIS_URL)

    with running_worker(tmp_path) as worker:
        beat = start_beat(tmp_path, SCHEDULE_SPREAD_SECONDS="0")  # fire at once
        try:
            assert _wait_for_probe(store, key, timeout=40) == "acme", (
                beat.output()[-3000:] + worker.output()[-3000:]
            )

            client = Client(HTTP_HOST="acme.testserver")
            assert client.login(username="maria", password=PASSWORD)
            response = client.post(f"/admin/mlops/tenantschedule/{task.pk}/change/", {})
            assert response.status_code == 302
            task.refresh_from_db()
            assert not task.enabled

            time.sleep(4)  # Beat notices the change within its 1 s sync; in-flight runs finish
            store.delete(f"schema-probe:{key}")
            assert _wait_for_probe(store, key, timeout=6) is None, beat.output()[-3000:]
        finally:
            beat.stop()
