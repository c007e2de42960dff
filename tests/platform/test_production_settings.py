"""With DJANGO_DEBUG false the settings refuse to load with a key that ships with the code or
with no allowed host: the process stops at start-up, saying which."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.nodb
BASE_DIR = Path(__file__).resolve().parents[2]


def _start(**env: str) -> subprocess.CompletedProcess:
    """Load the settings in a fresh process, as `gunicorn` or `celery` would at start-up."""
    import os

    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "a-secret-of-this-deployment-only-9f2c4e",
        "DJANGO_ALLOWED_HOSTS": ".arena.example.com",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.DEBUG)"],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_production_start_with_its_own_key_and_hosts_loads():
    started = _start()
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == "False"


@pytest.mark.parametrize(
    "key", ["change-me-to-a-long-random-string", "dev-only-insecure-secret-key-change-me", ""]
)
def test_a_production_start_with_a_key_that_ships_with_the_code_is_refused(key):
    started = _start(DJANGO_SECRET_KEY=key)
    assert started.returncode != 0
    assert "ImproperlyConfigured" in started.stderr
    assert "DJANGO_SECRET_KEY must be set to a secret of your own" in started.stderr


def test_the_compose_files_placeholder_is_the_key_refused():
    import yaml

    compose = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())
    placeholder = compose["services"]["web"]["environment"]["DJANGO_SECRET_KEY"]
    started = _start(DJANGO_SECRET_KEY=placeholder)
    assert started.returncode != 0 and "DJANGO_SECRET_KEY" in started.stderr


def test_a_production_start_with_no_allowed_host_is_refused():
    started = _start(DJANGO_ALLOWED_HOSTS="")
    assert started.returncode != 0
    assert "DJANGO_ALLOWED_HOSTS is empty" in started.stderr


def test_debug_starts_with_the_development_defaults():
    started = _start(DJANGO_DEBUG="true", DJANGO_SECRET_KEY="", DJANGO_ALLOWED_HOSTS="")
    assert started.returncode == 0, started.stderr
