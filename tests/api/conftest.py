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
