"""Beat scheduler that spreads many tenants' jobs over a window instead of one second."""

import zlib

from django.conf import settings
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry


def spread_seconds(schema_name: str, window: int | None = None) -> int:
    """A stable delay in [0, window) for a tenant: the same tenant always gets the same one."""
    window = settings.SCHEDULE_SPREAD_SECONDS if window is None else window
    if window <= 0:
        return 0
    return zlib.crc32(schema_name.encode()) % window


class TenantSpreadEntry(ModelEntry):
    def __init__(self, model, app=None):
        super().__init__(model, app=app)
        schema = (self.options.get("headers") or {}).get("_schema_name")
        if schema and "countdown" not in self.options:
            self.options["countdown"] = spread_seconds(schema)


class TenantSpreadScheduler(DatabaseScheduler):
    """django-celery-beat's database scheduler; a tenant's job waits its tenant's delay."""

    Entry = TenantSpreadEntry
