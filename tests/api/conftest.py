"""Fixtures for API tests: one user per role (and one without a role) in the test tenant."""

import pytest

from tests.api.factories import UserFactory


@pytest.fixture
def viewer():
    return UserFactory(username="vera", role="viewer")


@pytest.fixture
def scientist():
    return UserFactory(username="sami", role="data_scientist")


@pytest.fixture
def manager():
    return UserFactory(username="maria", role="ml_manager")


@pytest.fixture
def no_role():
    return UserFactory(username="nobody")


@pytest.fixture(autouse=True)
def _forget_failed_logins():
    """Failed token logins are counted in Redis, which outlives each test's transaction: start
    and end every API test with none counted, so that one test's failures throttle no other."""
    import redis
    from django.conf import settings

    def forget():
        client = redis.Redis.from_url(settings.REDIS_URL)
        for key in client.scan_iter(match="*throttle_login_failures_*"):
            client.delete(key)

    forget()
    yield
    forget()
