"""Celery app whose tasks run in the schema of the tenant that queued them."""

import os

from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = CeleryApp("forecast_arena")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["config"])


def in_this_tenant(signature):
    """The signature, stamped with the current tenant's schema: a chord's callback is sent by
    whichever worker finishes the last of its tasks, not from where the chord was started."""
    from django.db import connection

    return signature.set(headers={"_schema_name": connection.schema_name})
