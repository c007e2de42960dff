"""The tenant's model health, cached for a short while: GET /models/health is read on every
dashboard refresh, and the services that change what it shows forget it once they commit."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.db import connection, transaction
from django_tenants.utils import schema_context

from mlops.health_selectors import model_health
from tenants.selectors import tenant_policy

# One entry per tenant: {model name: {"threshold": ..., "health": [...]}}. The cache's key
# function (django_tenants.cache.make_key, settings.CACHES) puts the schema in every key, so no
# tenant reads another's.
HEALTH_CACHE_KEY = "model-health"
# How stale a read can be if a write forgets to forget it (a daily job's numbers, a policy
# edited in the platform admin).
HEALTH_CACHE_SECONDS = 30


def cached_model_health(*, name: str) -> list[dict[str, Any]]:
    """`health_selectors.model_health(name=name)`, from the tenant's cache while it is fresh.

    The tenant's drift threshold (which decides healthy against degraded) is stored with the
    entry, so a policy change is read at once. Names without an active version are not
    cached: any name may be asked for, and their answer costs nothing to compute."""
    threshold = float(tenant_policy().drift_threshold_pct)
    cached = cache.get(HEALTH_CACHE_KEY) or {}
    entry = cached.get(name)
    if entry is not None and entry["threshold"] == threshold:
        return entry["health"]
    health = model_health(name=name)
    if health:
        entry = {"threshold": threshold, "health": health}
        cache.set(HEALTH_CACHE_KEY, {**cached, name: entry}, HEALTH_CACHE_SECONDS)
    return health


def forget_model_health() -> None:
    """Drop the tenant's cached model health once the current transaction commits (at once
    outside one): a read before the commit would cache the old state again."""
    schema = connection.schema_name

    def forget() -> None:
        with schema_context(schema):
            cache.delete(HEALTH_CACHE_KEY)

    transaction.on_commit(forget)
