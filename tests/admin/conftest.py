"""Fixtures for admin tests: eager Celery (alerts deliver in-process), a logged-in client per role,
and a headless Chromium against the live server for browser tests."""

import pytest
from django.test import Client

from config.celery import app as celery_app
from tests.admin.factories import staff_user
from tests.tenancy import PASSWORD


@pytest.fixture(autouse=True)
def artifact_storage(settings, tmp_path):
    """Model artifacts registered by a test go to a folder of its own."""
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture(autouse=True)
def eager_celery(monkeypatch):
    """Alert deliveries queued on commit run at once instead of waiting in Redis for a worker."""
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)


def logged_in(username: str) -> Client:
    client = Client(HTTP_HOST="acme.testserver")
    assert client.login(username=username, password=PASSWORD)
    return client


@pytest.fixture
def manager():
    return staff_user("ml_manager", "maria")


@pytest.fixture
def scientist():
    return staff_user("data_scientist", "sam")


@pytest.fixture
def viewer():
    return staff_user("viewer", "vera")


@pytest.fixture
def browser():
    """Headless Debian Chromium through its own chromedriver (no browser download)."""
    from tests.admin.browser import start_chrome

    driver = start_chrome()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def acme_live(live_server, tenant):
    """The live server's address on the test tenant's host (Chromium resolves *.localhost to
    127.0.0.1; the tenant is found by that host name)."""
    from tenants.models import Domain

    Domain.objects.get_or_create(
        domain="acme.localhost", defaults={"tenant": tenant, "is_primary": False}
    )
    port = live_server.url.rsplit(":", 1)[1]
    return f"http://acme.localhost:{port}"
