"""Saving fitted models as checksummed bytes (no pickle) and loading them back safely."""

from __future__ import annotations

import hashlib
import platform
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
import xgboost

from forecasting.families import ForecastModel, family


class ArtifactIntegrityError(Exception):
    """The stored bytes are not the artifact that was registered (checksum or family differs)."""


@dataclass(frozen=True, eq=False)
class Artifact:
    """A fitted model's bytes with what is needed to trust and reproduce them."""

    data: bytes = field(repr=False)
    sha256: str
    library_versions: dict[str, str]
    algorithm: str
    hyperparameters: dict[str, Any]
    features: list[str]


def library_versions() -> dict[str, str]:
    """Versions of the libraries a saved model depends on."""
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "xgboost": xgboost.__version__,
        "torch": torch.__version__,
    }


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def serialize(model: ForecastModel) -> Artifact:
    """The fitted model as an Artifact; raises RuntimeError if the model is not fitted."""
    data = model.to_bytes()
    return Artifact(
        data=data,
        sha256=sha256_of(data),
        library_versions=library_versions(),
        algorithm=model.algorithm,
        hyperparameters=model.hyperparameters,
        features=model.features,
    )


def deserialize(data: bytes, *, algorithm: str, expected_sha256: str) -> ForecastModel:
    """The fitted model saved in `data`; raises ArtifactIntegrityError when the bytes do not
    match `expected_sha256` or hold another algorithm's model."""
    actual_sha256 = sha256_of(bytes(data))
    if actual_sha256 != expected_sha256:
        raise ArtifactIntegrityError(
            f"{algorithm} artifact failed its integrity check: sha256 of the stored bytes is "
            f"{actual_sha256}, the registered sha256 is {expected_sha256}; the file was "
            "changed or corrupted after it was saved, so it will not be loaded"
        )
    try:
        return family(algorithm).from_bytes(bytes(data))
    except ValueError as error:
        raise ArtifactIntegrityError(
            f"artifact does not hold a {algorithm} model: {error}"
        ) from error
