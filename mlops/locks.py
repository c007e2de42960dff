"""Locks that keep one tenant from running the same heavy job twice at once."""

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


def _lock_key(*parts: str) -> int:
    # A signed 64-bit key from the schema and the job's name (advisory locks take a bigint).
    digest = hashlib.blake2b("\x1f".join([connection.schema_name, *parts]).encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


@contextmanager
def job_lock(*parts: str) -> Iterator[bool]:
    """Hold a session-level PostgreSQL advisory lock on the job named by `parts` in this tenant
    (e.g. `"retrain", name`); yields whether it was acquired (never waits).

    The lock lives with the database session, so it is freed when the holder's process dies
    (its connection closes): it cannot outlive a lost worker.
    """
    key = _lock_key(*parts)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def job_running(*parts: str) -> bool:
    """Whether some process holds the lock of the job named by `parts` in this tenant now."""
    with job_lock(*parts) as acquired:
        return not acquired


def model_lock(name: str):
    """The lock of retraining model `name` (any segment) in this tenant."""
    return job_lock("retrain", name)


def walk_forward_lock(version_id: int):
    """The lock of version `version_id`'s walk-forward backtest in this tenant."""
    return job_lock("walk-forward", str(version_id))
