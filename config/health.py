"""GET /healthz on any host: database, Redis and pending migrations, as JSON."""

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.loader import MigrationLoader
from django.http import JsonResponse


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return f"database unreachable: {exc}".strip()
    return None


def check_redis() -> str | None:
    import redis

    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1
        )
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return f"redis unreachable: {exc}"
    return None


def pending_migrations() -> dict[str, list[str]]:
    """Migrations not yet applied, per schema (public and every tenant schema)."""
    from django.apps import apps
    from django_tenants.utils import get_tenant_model

    def labels(app_names: list[str]) -> set[str]:
        return {config.label for config in apps.get_app_configs() if config.name in app_names}

    known = set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    shared, tenant = labels(settings.SHARED_APPS), labels(settings.TENANT_APPS)
    wanted_public = {key for key in known if key[0] in shared}
    wanted_tenant = {key for key in known if key[0] in tenant}
    schemas = (
        get_tenant_model().objects.values_list("schema_name", flat=True).order_by("schema_name")
    )
    pending: dict[str, list[str]] = {}
    with connection.cursor() as cursor:
        for schema in list(schemas):
            wanted = wanted_public if schema == settings.PUBLIC_SCHEMA_NAME else wanted_tenant
            cursor.execute("SELECT to_regclass(%s)", [f'"{schema}".django_migrations'])
            applied: set = set()
            if cursor.fetchone()[0] is not None:
                cursor.execute(f'SELECT app, name FROM "{schema}".django_migrations')
                applied = set(cursor.fetchall())
            missing = sorted(f"{app}.{name}" for app, name in wanted - applied)
            if missing:
                pending[schema] = missing
    return pending


def health_report() -> tuple[bool, dict]:
    database_error = check_database()
    redis_error = check_redis()
    checks: dict[str, dict] = {
        "database": {"ok": database_error is None, "error": database_error},
        "redis": {"ok": redis_error is None, "error": redis_error},
    }
    if database_error is None:
        pending = pending_migrations()
        checks["migrations"] = {"ok": not pending, "pending": pending}
    else:
        checks["migrations"] = {"ok": False, "error": "not checked: database unreachable"}
    healthy = all(check["ok"] for check in checks.values())
    return healthy, checks


class HealthCheckMiddleware:
    """Answer /healthz before tenant routing, so a load balancer can ask any host."""

    path = "/healthz"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.rstrip("/") != self.path:
            return self.get_response(request)
        connection.set_schema_to_public()
        healthy, checks = health_report()
        failing = [name for name, check in checks.items() if not check["ok"]]
        body = {"status": "ok" if healthy else "unhealthy", "failing": failing, "checks": checks}
        return JsonResponse(body, status=200 if healthy else 503)
