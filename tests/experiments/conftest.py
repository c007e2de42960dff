"""Fixtures of the experiment tests: role users and artifact storage in a temporary folder."""

import pytest

from tests.mlops.factories import UserFactory


@pytest.fixture(autouse=True)
def artifact_storage(settings, tmp_path):
    """Artifacts go to a folder of the test's own."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def manager():
    return UserFactory(username="manager", role="ml_manager")


@pytest.fixture
def scientist():
    return UserFactory(username="scientist", role="data_scientist")


@pytest.fixture
def viewer():
    return UserFactory(username="viewer", role="viewer")
