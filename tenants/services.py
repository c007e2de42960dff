"""Tenant provisioning: schema, domain, migrations, first admin user, roles."""

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Q
from django_tenants.utils import schema_context

from tenants.models import Domain, Tenant
from tenants.roles import ROLES, VIEWABLE_APPS, permissions_for
from tenants.signals import tenant_provisioned


@dataclass(frozen=True)
class ProvisionResult:
    tenant: Tenant
    domain: str
    admin_username: str
    admin_password: str | None  # set only when this call created or reset the password
    created: bool


def tenant_domain(slug: str) -> str:
    return f"{slug}.{settings.BASE_DOMAIN}"


def ensure_public_tenant() -> Tenant:
    """Return the public (platform) tenant, creating it and its bare-domain route if missing."""
    tenant, _ = Tenant.objects.get_or_create(
        schema_name=settings.PUBLIC_SCHEMA_NAME,
        defaults={"name": "Platform", "slug": "public"},
    )
    Domain.objects.get_or_create(
        domain=settings.BASE_DOMAIN, defaults={"tenant": tenant, "is_primary": True}
    )
    return tenant


def provision_tenant(
    *,
    slug: str,
    name: str | None = None,
    time_zone: str = "UTC",
    domain: str | None = None,
    admin_username: str = "admin",
    admin_email: str | None = None,
    admin_password: str | None = None,
    verbosity: int = 1,
) -> ProvisionResult:
    """Create or complete a tenant; returns what was done. Safe to run again on an existing tenant.

    Raises ValidationError for a bad slug or time zone.
    """
    ensure_public_tenant()
    tenant = Tenant.objects.filter(slug=slug).first()
    created = tenant is None
    if created:
        tenant = Tenant(slug=slug, schema_name=slug, name=name or slug.title(), time_zone=time_zone)
        tenant.full_clean(exclude=["schema_name"])
        tenant.save(verbosity=verbosity)  # creates the schema and runs the tenant migrations
    else:
        tenant.create_schema(check_if_exists=True)  # a schema lost by hand is re-created
    host = domain or tenant_domain(slug)
    Domain.objects.get_or_create(domain=host, defaults={"tenant": tenant, "is_primary": True})

    with schema_context(tenant.schema_name):
        sync_roles()
        password = _ensure_admin(
            username=admin_username,
            email=admin_email or f"{admin_username}@{host}",
            password=admin_password,
        )
    # Per-tenant resources of other apps (mlops: the default schedules).
    tenant_provisioned.send(sender=Tenant, tenant=tenant)
    return ProvisionResult(
        tenant=tenant,
        domain=host,
        admin_username=admin_username,
        admin_password=password,
        created=created,
    )


@transaction.atomic
def sync_roles() -> dict[str, Group]:
    """Create the role groups in the current schema and give each exactly its permissions."""
    groups = {}
    view_permissions = list(
        Permission.objects.filter(
            content_type__app_label__in=VIEWABLE_APPS, codename__startswith="view_"
        )
    )
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        wanted = permissions_for(role)
        extra = _permissions(wanted)
        group.permissions.set(view_permissions + extra)
        groups[role] = group
    return groups


def _permissions(names: list[str]) -> list[Permission]:
    if not names:
        return []
    query = Q()
    for name in names:
        app_label, codename = name.split(".", 1)
        query |= Q(content_type__app_label=app_label, codename=codename)
    found = list(Permission.objects.filter(query).select_related("content_type"))
    missing = set(names) - {f"{p.content_type.app_label}.{p.codename}" for p in found}
    if missing:
        raise ImproperlyConfigured(f"Role permissions that do not exist: {sorted(missing)}")
    return found


def _ensure_admin(*, username: str, email: str, password: str | None) -> str | None:
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is None:
        password = password or secrets.token_urlsafe(12)
        user_model.objects.create_superuser(username=username, email=email, password=password)
        return password
    if password:
        user.set_password(password)
        user.save(update_fields=["password"])
        return password
    return None
