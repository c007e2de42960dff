import time
import uuid

import pytest
import redis
from django.conf import settings
from django.db import connection

from config.tasks import schema_probe

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _wait_for(client, key, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = client.get(key)
        if value is not None:
            return value.decode()
        time.sleep(0.2)
    return None


def test_tasks_queued_in_a_tenant_run_in_that_tenants_schema(
    celery_worker_process, tenant, other_tenant
):
    client = redis.Redis.from_url(settings.REDIS_URL)
    key_a, key_b = uuid.uuid4().hex, uuid.uuid4().hex

    connection.set_tenant(tenant)
    schema_probe.delay(key_a)
    connection.set_tenant(other_tenant)
    schema_probe.delay(key_b)
    connection.set_tenant(tenant)

    ran_in_a = _wait_for(client, f"schema-probe:{key_a}")
    ran_in_b = _wait_for(client, f"schema-probe:{key_b}")
    assert (ran_in_a, ran_in_b) == ("acme", "globex"), celery_worker_process.output()[-3000:]
