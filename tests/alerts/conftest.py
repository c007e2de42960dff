"""Fixtures for alert tests: a real SMTP server process, eager Celery, role users, versions."""

import email
import email.policy
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from config.celery import app as celery_app
from tests.mlops.factories import ModelVersionFactory, UserFactory

SERVER_SCRIPT = Path(__file__).with_name("smtp_server.py")


class SMTPServer:
    """A child process running aiosmtpd on a loopback port; reads back what it received."""

    def __init__(self, *, mode: str, failures: int, outdir: Path, unknown: tuple[str, ...] = ()):
        self.outdir = outdir
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(SERVER_SCRIPT),
                "--mode",
                mode,
                "--failures",
                str(failures),
                "--outdir",
                str(outdir),
                "--unknown",
                ",".join(unknown),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        line = self.process.stdout.readline()
        if not line.startswith("READY "):
            self.stop()
            raise AssertionError(f"SMTP server did not start: {line}{self.process.stdout.read()}")
        self.port = int(line.split()[1])

    def messages(self) -> list[email.message.EmailMessage]:
        files = sorted(self.outdir.glob("*.eml"), key=lambda p: int(p.stem))
        return [
            email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in files
        ]

    def attempts(self) -> list[str]:
        log = self.outdir / "attempts.log"
        return log.read_text().splitlines() if log.exists() else []

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()


@pytest.fixture
def smtp_server(tmp_path, settings) -> Callable[..., SMTPServer]:
    """Start an SMTP server process (accept / refuse / defer; `unknown` addresses refused at
    RCPT) and point Django's SMTP backend at it."""
    servers: list[SMTPServer] = []

    def start(
        mode: str = "accept", failures: int = -1, unknown: tuple[str, ...] = ()
    ) -> SMTPServer:
        server = SMTPServer(
            mode=mode, failures=failures, outdir=tmp_path / f"smtp{len(servers)}", unknown=unknown
        )
        servers.append(server)
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = server.port
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_HOST_USER = ""
        settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_TIMEOUT = 5
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def eager_celery(monkeypatch):
    """Tasks queued with .delay() run at once in this process (retries too, without waiting)."""
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)


@pytest.fixture
def site(settings):
    settings.SITE_SCHEME = "https"
    settings.SITE_PORT = "8443"
    return settings


@pytest.fixture
def manager():
    return UserFactory(username="maria", email="maria@acme.example", role="ml_manager")


@pytest.fixture
def viewer():
    return UserFactory(username="victor", email="victor@acme.example", role="viewer")


@pytest.fixture
def champion():
    return ModelVersionFactory(version_number=12, status="champion", metrics={"mae": 12.8})


@pytest.fixture
def challenger(champion):
    return ModelVersionFactory(
        version_number=13, status="challenger", trigger="drift_detected", parent=champion
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")
