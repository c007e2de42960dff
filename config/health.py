"""GET /healthz on any host: database, Redis and pending migrations.

Anyone gets the status (a load balancer needs no more); the checks' details (error texts,
schemas with pending migrations, which are other tenants' names) go only to the platform
host's staff or to a caller with the health token.
"""

from __future__ import annotations

import hmac
import threading
import time

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.loader import MigrationLoader
from django.http import JsonResponse

# The per-schema migration check queries every schema: run it at most this often (per process).
MIGRATIONS_CHECK_SECONDS = 60


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


class _MigrationsCheck:
    """The last per-schema migration check and when it ran (one per process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.checked_at: float | None = None
        self.pending: dict[str, list[str]] = {}

    def result(self) -> tuple[dict[str, list[str]], float]:
        """The pending migrations, checked again when the last check is a minute old; and
        the check's age in seconds."""
        with self._lock:
            now = time.monotonic()
            if self.checked_at is None or now - self.checked_at >= MIGRATIONS_CHECK_SECONDS:
                self.pending = pending_migrations()
                self.checked_at = now
            return self.pending, now - self.checked_at

    def forget(self) -> None:
        with self._lock:
            self.checked_at = None


migrations_check = _MigrationsCheck()


def health_report() -> tuple[bool, dict]:
    database_error = check_database()
    redis_error = check_redis()
    checks: dict[str, dict] = {
        "database": {"ok": database_error is None, "error": database_error},
        "redis": {"ok": redis_error is None, "error": redis_error},
    }
    if database_error is None:
        pending, age = migrations_check.result()
        checks["migrations"] = {"ok": not pending, "pending": pending, "age_seconds": int(age)}
    else:
        checks["migrations"] = {"ok": False, "error": "not checked: database unreachable"}
    healthy = all(check["ok"] for check in checks.values())
    return healthy, checks


def _has_health_token(request) -> bool:
    expected = settings.HEALTHZ_TOKEN
    given = request.headers.get("Authorization", "")
    if not expected or not given.startswith("Bearer "):
        return False
    return hmac.compare_digest(given.removeprefix("Bearer ").encode(), expected.encode())


def _is_platform_staff(request) -> bool:
    """Whether the request comes, on the platform (public) host, from a signed-in staff user.

    The middleware runs before sessions and authentication, so it reads the session itself."""
    from importlib import import_module

    from django.contrib.auth import get_user
    from django_tenants.utils import get_tenant_domain_model

    key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if not key:
        return False
    host = request.get_host().split(":")[0].lower()
    on_platform_host = get_tenant_domain_model().objects.filter(
        domain=host, tenant__schema_name=settings.PUBLIC_SCHEMA_NAME
    )
    if not on_platform_host.exists():
        return False
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(key)
    user = get_user(request)
    return bool(user.is_active and user.is_staff)


def may_see_details(request) -> bool:
    try:
        return _has_health_token(request) or _is_platform_staff(request)
    except DatabaseError:
        return False  # the database is down: the status says so, details need it


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
        body: dict = {"status": "ok" if healthy else "unhealthy"}
        if may_see_details(request):
            body["failing"] = [name for name, check in checks.items() if not check["ok"]]
            body["checks"] = checks
        return JsonResponse(body, status=200 if healthy else 503)
