"""`make demo`: start the services (embedded ones when no URL is set), prepare the demo tenant,
then run web server, Celery worker and Beat in the foreground until Ctrl-C stops all of them.

python -m config.launcher demo [--quick] [--reset] [--port 8000]
"""

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def ensure_services() -> None:
    """Point DATABASE_URL and REDIS_URL at running services, starting embedded ones if unset.

    The embedded servers belong to this process and stop when it exits; children get the URLs
    in their environment, so they start nothing themselves.
    """
    from config import embedded

    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = embedded.postgres_url()
        print(f"Embedded PostgreSQL: {embedded.LOCAL_DIR / 'pgdata'}")
    if not os.environ.get("REDIS_URL"):
        os.environ["REDIS_URL"] = embedded.redis_url()
        print(f"Embedded Redis: {embedded.redis_socket_path()}")


def manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, check=True)


def serve(port: int) -> int:
    python = sys.executable
    commands = {
        "web": [python, "manage.py", "runserver", f"0.0.0.0:{port}", "--noreload"],
        "worker": [
            python,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--loglevel=INFO",
            "--concurrency=2",
            "--without-gossip",
            "--without-mingle",
        ],
        "beat": [python, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO", "--pidfile="],
    }
    children = {
        name: subprocess.Popen(command, cwd=BASE_DIR, start_new_session=True)
        for name, command in commands.items()
    }
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    status = 0
    try:
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    print(f"{name} exited with status {child.returncode}; stopping the others.")
                    status = child.returncode or 1
                    stopping = True
            time.sleep(0.5)
    finally:
        print("Stopping web, worker and beat ...")
        for child in children.values():
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config.launcher")
    parser.add_argument("command", choices=["demo", "serve"])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    args, demo_args = parser.parse_known_args(argv)
    os.chdir(BASE_DIR)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SITE_PORT", str(args.port))
    ensure_services()
    manage("migrate_schemas", "--executor=standard", "-v", "0")
    if args.command == "demo":
        manage("demo", *demo_args)
    print(f"\nReady: http://demo.localhost:{args.port}/admin/  (Ctrl-C stops everything)\n")
    return serve(args.port)


if __name__ == "__main__":
    sys.exit(main())
