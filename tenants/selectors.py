"""Reads about tenants."""

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
