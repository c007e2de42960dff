import re
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.nodb
BASE_DIR = Path(__file__).resolve().parents[2]


def _settings_variables() -> set[str]:
    """Every environment variable config/settings.py (and what it imports) reads."""
    source = "".join(
        (BASE_DIR / "config" / name).read_text() for name in ("settings.py", "embedded.py")
    )
    return set(re.findall(r'env_(?:str|bool|int|list)\(\s*"([A-Z_]+)"', source))


def _compose() -> dict:
    return yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())


def test_compose_runs_the_five_services():
    assert set(_compose()["services"]) == {"db", "redis", "web", "worker", "beat"}


def test_every_variable_the_app_services_set_is_read_by_the_settings():
    known = _settings_variables()
    assert {"DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY"} <= known
    for name in ("web", "worker", "beat"):
        variables = set(_compose()["services"][name]["environment"])
        assert variables <= known, f"{name} sets unknown variables: {variables - known}"


def test_service_commands_name_real_entry_points():
    from django.core.management import get_commands

    commands = {name: _compose()["services"][name]["command"] for name in ("web", "worker", "beat")}
    text = " ".join(" ".join(c) for c in commands.values())
    for module in re.findall(r"gunicorn (\S+):(\w+)", text):
        mod = __import__(module[0], fromlist=[module[1]])
        assert hasattr(mod, module[1])
    assert re.findall(r"celery -A (\S+)", text) == ["config", "config"]
    for app_name in re.findall(r"celery -A (\S+)", text):
        assert hasattr(__import__(app_name), "celery_app")
    for command in re.findall(r"manage\.py (\w+)", text):
        assert command in get_commands(), command
