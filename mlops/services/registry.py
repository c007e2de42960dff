"""Registering trained models as numbered versions, and loading them back, verified."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction

from forecasting import artifacts
from mlops.health_cache import forget_model_health
from mlops.models import (
    DEFAULT_MODEL_NAME,
    GLOBAL_SEGMENT,
    ModelVersion,
    Trigger,
    validate_segment,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from forecasting.families import ForecastModel


def artifact_storage_name(*, name: str, segment: str, artifact: artifacts.Artifact) -> str:
    """Where an artifact lives in storage: named by its content, so it is written once."""
    extension = getattr(artifact, "extension", None) or "bin"
    return f"models/{name}/{segment.replace(':', '_')}/{artifact.sha256}.{extension}"


def store_artifact(*, name: str, segment: str, artifact: artifacts.Artifact) -> str:
    """Write the artifact's bytes to storage unless already there; returns the storage name."""
    path = artifact_storage_name(name=name, segment=segment, artifact=artifact)
    if default_storage.exists(path):
        return path
    return default_storage.save(path, ContentFile(artifact.data))


def _lock_version_numbers(name: str) -> None:
    # Numbering is per model name; an advisory lock serialises concurrent registrations
    # (including the very first, which has no row to lock) until the transaction ends.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))",
            [f"mlops.modelversion:{connection.schema_name}:{name}"],
        )


@transaction.atomic
def register_model_version(
    *,
    name: str = DEFAULT_MODEL_NAME,
    segment: str = GLOBAL_SEGMENT,
    algorithm: str,
    model: ForecastModel | None = None,
    artifact: artifacts.Artifact | None = None,
    metrics: dict[str, Any] | None = None,
    importance: dict[str, Any] | None = None,
    trigger: str = Trigger.MANUAL,
    parent: ModelVersion | None = None,
    created_by: AbstractBaseUser | None = None,
    training_start: dt.date | None,
    training_end: dt.date | None,
    training_rows: int,
    window_days: int | None = None,
) -> ModelVersion:
    """Store the artifact and register it as candidate v<N> of `name`; returns the version.

    Raises ValueError when neither (or both) of model and artifact is given, or when the
    artifact's algorithm is not `algorithm`; ValidationError for a bad segment.
    """
    if (model is None) == (artifact is None):
        raise ValueError("Give either a fitted model or its serialised artifact.")
    validate_segment(segment)
    if trigger not in Trigger.values:
        raise ValueError(f"Unknown trigger {trigger!r}.")
    if artifact is None:
        artifact = artifacts.serialize(model)
    if artifact.algorithm != algorithm:
        raise ValueError(f"The artifact holds a {artifact.algorithm} model, not {algorithm}.")
    path = store_artifact(name=name, segment=segment, artifact=artifact)

    _lock_version_numbers(name)
    last = (
        ModelVersion.objects.filter(name=name)
        .order_by("-version_number")
        .values_list("version_number", flat=True)
        .first()
    )
    number = (last or 0) + 1
    version = ModelVersion(
        name=name,
        version=f"v{number}",
        version_number=number,
        segment=segment,
        algorithm=algorithm,
        metrics=metrics or {},
        importance=importance or {},
        artifact_sha256=artifact.sha256,
        library_versions=dict(artifact.library_versions),
        features=list(artifact.features),
        hyperparameters=dict(artifact.hyperparameters),
        training_start=training_start,
        training_end=training_end,
        training_rows=training_rows,
        window_days=window_days,
        trigger=trigger,
        parent=parent,
        created_by=created_by,
    )
    version.artifact.name = path
    version.save()
    forget_model_health()
    return version


def load_model(version: ModelVersion) -> ForecastModel:
    """The version's fitted model, read from storage. Raises ArtifactIntegrityError when the
    stored bytes do not match the registered sha256, FileNotFoundError when they are gone."""
    if not version.artifact:
        raise FileNotFoundError(f"{version} has no stored artifact.")
    with default_storage.open(version.artifact.name, "rb") as handle:
        data = handle.read()
    return artifacts.deserialize(
        data, algorithm=version.algorithm, expected_sha256=version.artifact_sha256
    )
