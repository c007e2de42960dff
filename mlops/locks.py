"""Locks that keep one tenant from running the same heavy job twice at once."""

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


def _lock_key(*parts: str) -> int:
    # A signed 64-bit key from the schema and the job's name (advisory locks take a bigint).
    digest = zlib.crc32("\x1f".join([connection.schema_name, *parts]).encode())
    return (1 << 32) + digest


@contextmanager
def model_lock(name: str) -> Iterator[bool]:
    """Hold a session-level PostgreSQL advisory lock for retraining `name` in this tenant.

    Yields whether it was acquired. The lock lives with the database session, so it is freed
    when the holder's process dies (its connection closes): it cannot outlive a lost worker.
    """
    key = _lock_key("retrain", name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
