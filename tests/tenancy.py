"""Test tenants, and the clean-up that keeps transactional tests from leaking rows."""

from django.db import connection

TEST_TENANTS = {
    "acme": {"name": "Acme Retail", "time_zone": "Europe/Berlin"},
    "globex": {"name": "Globex Stores", "time_zone": "America/New_York"},
}
PASSWORD = "test-password-123"


def ensure_test_tenants() -> None:
    from tenants.services import ensure_public_tenant, provision_tenant

    ensure_public_tenant()
    # The test client's default host routes to the public schema too.
    from tenants.models import Domain, Tenant

    Domain.objects.get_or_create(
        domain="testserver",
        defaults={"tenant": Tenant.objects.get(schema_name="public"), "is_primary": False},
    )
    for slug, fields in TEST_TENANTS.items():
        provision_tenant(
            slug=slug,
            name=fields["name"],
            time_zone=fields["time_zone"],
            domain=f"{slug}.testserver",
            admin_password=PASSWORD,
        )


def forget_cached_reads() -> None:
    """Empty the test tenants' read caches, which live in Redis and outlive each test's
    transaction (a test's rows are rolled back, its cached model health would not be)."""
    from django.core.cache import cache
    from django_tenants.utils import schema_context

    from config.read_cache import renew_generation
    from mlops.health_cache import HEALTH_CACHE_KEY

    for slug in TEST_TENANTS:
        with schema_context(slug):
            cache.delete(HEALTH_CACHE_KEY)
        renew_generation(slug)


def _truncate_schema(schema: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename NOT IN "
            "('django_migrations', 'django_content_type', 'auth_permission')",
            [schema],
        )
        tables = [f'"{schema}"."{name}"' for (name,) in cursor.fetchall()]
        if tables:
            cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


_dirty = False


def cleanup_after_transactional_test() -> None:
    """Empty the test tenants' schemas; the next test re-provisions them.

    Django flushes the current schema after a transactional test. Leaving the connection in a
    tenant schema keeps that flush away from the public tables (tenants, domains); the explicit
    truncation covers rows the test committed in the other tenant's schema.
    """
    global _dirty
    from django_celery_beat.models import PeriodicTask

    for slug in TEST_TENANTS:
        _truncate_schema(slug)
    connection.set_schema_to_public()
    from mlops.schedules import JOBS

    default_jobs = {f"{job.key}@{slug}" for job in JOBS for slug in TEST_TENANTS}
    for task in PeriodicTask.objects.exclude(name__in=default_jobs):
        task.delete()
    from tenants.models import Tenant

    connection.set_tenant(Tenant.objects.get(slug="acme"))
    _dirty = True


def restore_after_transactional_test() -> None:
    """Re-provision the test tenants (roles, admin users) after a transactional test emptied them."""
    global _dirty
    if _dirty:
        connection.set_schema_to_public()
        ensure_test_tenants()
        _dirty = False
