"""Fixtures of the experiment tests: the registry tests' role users and artifact storage."""

from tests.mlops.conftest import artifact_storage, manager, scientist, viewer  # noqa: F401
