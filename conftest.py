"""Test set-up: test tenants are created once per session (per xdist worker) and entered by every
database test."""

import os

import pytest
from django.db import connection

pytest_plugins = ["tests.processes"]

from tests.tenancy import (  # noqa: E402
    TEST_TENANTS,
    cleanup_after_transactional_test,
    ensure_test_tenants,
    forget_cached_reads,
    restore_after_transactional_test,
)


def pytest_configure(config):
    from django.conf import settings

    # Django's PBKDF2 (1,000,000 rounds) costs 0.3 s per password set or checked, and most tests
    # create users or log in: a fast hasher, as Django's own testing docs advise. Production keeps
    # the default (tests/platform/test_production_settings.py loads the settings afresh).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    worker_id = os.environ.get("PYTEST_XDIST_WORKER")
    if worker_id:
        from tests.isolation import isolate_worker

        isolate_worker(worker_id)


def pytest_collection_modifyitems(items):
    """Every test uses the database in the test tenant unless marked `nodb`."""
    for item in items:
        if item.get_closest_marker("nodb") is None and item.get_closest_marker("django_db") is None:
            item.add_marker(pytest.mark.django_db)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Re-provision the test tenants after a transactional test, before the next test's
    fixtures open their transaction (so the restored rows are committed)."""
    from pytest_django.plugin import blocking_manager_key

    with item.config.stash[blocking_manager_key].unblock():
        restore_after_transactional_test()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Create (or, with --reuse-db, find) the public tenant and the test tenants."""
    with django_db_blocker.unblock():
        ensure_test_tenants()


@pytest.fixture(scope="session")
def tenants(django_db_setup, django_db_blocker):
    from tenants.models import Tenant

    with django_db_blocker.unblock():
        return {t.slug: t for t in Tenant.objects.filter(slug__in=TEST_TENANTS)}


@pytest.fixture
def tenant(tenants):
    """The tenant every database test runs in (acme.testserver)."""
    return tenants["acme"]


@pytest.fixture
def other_tenant(tenants):
    """A second tenant, for isolation tests (globex.testserver)."""
    return tenants["globex"]


@pytest.fixture(autouse=True)
def _enter_tenant(request):
    """Run each database test inside the test tenant's schema."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        yield
        return
    transactional = (
        "transactional_db" in request.fixturenames
        or "live_server" in request.fixturenames
        or (marker is not None and marker.kwargs.get("transaction", False))
    )
    request.getfixturevalue("transactional_db" if transactional else "db")
    forget_cached_reads()
    connection.set_tenant(request.getfixturevalue("tenant"))
    yield
    if transactional:
        cleanup_after_transactional_test()
    else:
        connection.set_schema_to_public()
