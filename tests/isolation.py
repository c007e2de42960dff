"""Each pytest-xdist worker gets its own broker queue, Redis database and media folder.

pytest-django already gives every worker a test database of its own (`test_<name>_gw0`, ...).
What lives outside the database is shared unless separated here: two workers' Celery workers on
one queue would take each other's tasks, and a test that purges the queue would drop the other
worker's messages.
"""

from __future__ import annotations

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def isolate_worker(worker_id: str) -> None:
    """Point this process's Redis, Celery queue and media root at the worker's own."""
    from django.conf import settings

    from config import embedded
    from config.celery import app

    index = int(worker_id.removeprefix("gw"))
    redis_url = embedded.redis_url_with_database(
        settings.REDIS_URL, embedded.redis_database(settings.REDIS_URL) + index
    )
    queue = f"{settings.CELERY_TASK_DEFAULT_QUEUE}-{worker_id}"
    settings.REDIS_URL = redis_url
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": redis_url}}
    settings.CELERY_BROKER_URL = embedded.celery_broker_url(redis_url)
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    settings.MEDIA_ROOT = str(BASE_DIR / ".local" / "test-media" / worker_id)
    app.conf.update(broker_url=settings.CELERY_BROKER_URL, task_default_queue=queue)
