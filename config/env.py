"""Typed readers for settings taken from the environment; a bad value fails at start-up."""

import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true/false)")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


# Secret keys that ship with the code: the default of config/settings.py and the placeholder of
# docker-compose.yml. Anyone who reads the repository could sign sessions with them.
PLACEHOLDER_SECRET_KEYS = (
    "dev-only-insecure-secret-key-change-me",
    "change-me-to-a-long-random-string",
)


def check_production_settings(*, secret_key: str | None, allowed_hosts: list[str]) -> None:
    """Raise ImproperlyConfigured for settings a production start must not run with."""
    if not secret_key or secret_key in PLACEHOLDER_SECRET_KEYS or secret_key.startswith("dev-only"):
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set to a secret of your own when DJANGO_DEBUG is false "
            "(not the default or docker-compose.yml's placeholder)."
        )
    if not allowed_hosts:
        raise ImproperlyConfigured(
            "DJANGO_ALLOWED_HOSTS is empty: with DJANGO_DEBUG false every request would be "
            "refused. Name the hosts, e.g. .arena.example.com,arena.example.com."
        )
