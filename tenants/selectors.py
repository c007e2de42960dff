"""Reads about tenants: the tenant of the connection and its model-ops policy."""

from __future__ import annotations

import contextvars
import dataclasses
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from tenants.models import Tenant


def current_tenant() -> Tenant | None:
    """The tenant whose schema the connection is in, with its settings (None in public).

    Requests and Celery tasks put the real tenant on the connection; `schema_context` puts a
    stand-in that knows only the schema name, so that one is looked up here — a tenant's
    policy (thresholds, time zone) must never silently fall back to defaults.
    """
    tenant = getattr(connection, "tenant", None)
    schema = getattr(connection, "schema_name", None)
    if isinstance(tenant, Tenant):
        return tenant
    if not schema or schema == "public":
        return None
    return Tenant.objects.get(schema_name=schema)


@dataclass(frozen=True)
class TenantPolicy:
    """The model-ops policy a tenant's jobs and decisions follow (fields of `Tenant`)."""

    time_zone: str
    country: str
    subdivision: str
    promotion_min_improvement_pct: float
    promotion_min_confidence: float
    drift_threshold_pct: float
    overstock_tolerance: float
    dismissed_challenger: str
    retrain_period_days: int
    refresh_margin_pct: float
    min_shadow_days: int
    min_post_change_days: int
    drift_snooze_days: int
    walk_forward_warm_start: bool

    @classmethod
    def names(cls) -> list[str]:
        return [each.name for each in dataclasses.fields(cls)]

    @classmethod
    def of(cls, tenant: Tenant) -> TenantPolicy:
        return cls(**{name: getattr(tenant, name) for name in cls.names()})


# What-if overrides of a replay (`manage.py replay_operations --set NAME=VALUE`): they change the
# policy its jobs read without touching the tenant's own settings.
_overrides: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "tenant_policy_overrides", default=None
)


def tenant_policy() -> TenantPolicy:
    """The policy of the tenant whose schema the connection is in, with any overrides in force.

    Raises ImproperlyConfigured outside a tenant schema: a job that judges or alerts must never
    run on made-up defaults.
    """
    tenant = current_tenant()
    if tenant is None:
        raise ImproperlyConfigured(
            "No tenant policy in the public schema: enter a tenant (tenant_context) first."
        )
    policy = TenantPolicy.of(tenant)
    overrides = _overrides.get()
    return dataclasses.replace(policy, **overrides) if overrides else policy


def parse_policy_overrides(pairs: list[str]) -> dict[str, Any]:
    """`NAME=VALUE` pairs as typed policy overrides; raises ValueError naming a bad pair."""
    fields = {each.name: each for each in dataclasses.fields(TenantPolicy)}
    model_fields = {field.name: field for field in Tenant._meta.get_fields()}
    overrides: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or name not in fields:
            raise ValueError(
                f"{pair!r}: give NAME=VALUE with NAME one of {', '.join(sorted(fields))}"
            )
        model_field = model_fields[name]
        try:
            value = model_field.to_python(raw.strip())
            model_field.run_validators(value)
            if model_field.choices:
                model_field.validate(value, None)
        except Exception as error:  # Django's ValidationError lists the reason
            message = "; ".join(getattr(error, "messages", [str(error)]))
            raise ValueError(f"{pair!r}: {message}") from None
        overrides[name] = value
    return overrides


@contextmanager
def policy_overrides(overrides: dict[str, Any]) -> Iterator[None]:
    """Within the block, `tenant_policy()` answers with these values instead of the tenant's."""
    token = _overrides.set({**(_overrides.get() or {}), **overrides})
    try:
        yield
    finally:
        _overrides.reset(token)


def tenant_today() -> dt.date:
    """Today in the tenant's time zone (the day its daily jobs act for)."""
    import zoneinfo

    from django.utils import timezone

    return timezone.now().astimezone(zoneinfo.ZoneInfo(tenant_policy().time_zone)).date()
