"""Operational Celery tasks of the platform itself."""

import redis
from django.conf import settings
from django.db import connection

from config.celery import app


@app.task(name="config.tasks.schema_probe")
def schema_probe(key: str) -> str:
    """Record, under `schema-probe:<key>` in Redis, the schema this task ran in (for operators and tests).

    Reports the database's own `current_schema()`, not just what the worker believes.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        schema = cursor.fetchone()[0]
    redis.Redis.from_url(settings.REDIS_URL).set(f"schema-probe:{key}", schema, ex=600)
    return schema
