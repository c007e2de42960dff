"""Real worker, Beat and server processes for end-to-end tests, pointed at the test database."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

BASE_DIR = Path(__file__).resolve().parent.parent


def test_database_url(name: str | None = None) -> str:
    """The URL of the database this test session uses (the test database, not the dev one), or
    of database `name` on its server."""
    db = {**connection.settings_dict, **({"NAME": name} if name else {})}
    host = db.get("HOST") or db.get("OPTIONS", {}).get("host") or "localhost"
    user = quote(db.get("USER") or "", safe="")
    password = quote(str(db.get("PASSWORD") or ""), safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    if host.startswith("/"):
        return f"postgresql://{auth}/{db['NAME']}?host={host}"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{db['NAME']}"


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=test_database_url(),
        REDIS_URL=settings.REDIS_URL,
        CELERY_QUEUE=settings.CELERY_TASK_DEFAULT_QUEUE,
        DJANGO_SETTINGS_MODULE="config.settings",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def purge_queue() -> None:
    """Drop queued messages and those a killed worker left unacknowledged (kombu's redis keys)."""
    import redis

    redis.Redis.from_url(settings.REDIS_URL).delete(
        settings.CELERY_TASK_DEFAULT_QUEUE, "unacked", "unacked_index", "unacked_mutex"
    )


class ManagedProcess:
    """A child process whose output goes to a log file the test can read on failure."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            args,
            cwd=BASE_DIR,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"{self.name} never printed {text!r}:\n{self.output()[-4000:]}")

    def kill(self, sig: int = 9) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def start_worker(
    log_dir: Path, name: str = "worker", concurrency: int = 1, **env
) -> ManagedProcess:
    worker = ManagedProcess(
        name,
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--loglevel=INFO",
            f"--concurrency={concurrency}",
            "--pool=prefork",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            f"--hostname={name}@%h",
        ],
        child_env(**env),
        log_dir,
    )
    worker.wait_for_output("ready.")
    return worker


def start_beat(log_dir: Path, **env) -> ManagedProcess:
    return ManagedProcess(
        "beat",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "beat",
            "--loglevel=DEBUG",
            "--pidfile=",
            "--max-interval=1",
        ],
        child_env(**env),
        log_dir,
    )


@contextmanager
def running_worker(log_dir: Path, **kwargs) -> Iterator[ManagedProcess]:
    purge_queue()
    worker = start_worker(log_dir, **kwargs)
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path):
    """A real Celery worker (separate process) consuming the test broker queue, on the test database."""
    with running_worker(tmp_path) as worker:
        yield worker
