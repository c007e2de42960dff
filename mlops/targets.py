"""What a retrain may be asked for: a model name and segment the tenant has, and hyperparameters
its family accepts. Checked when the request arrives, so that nothing is queued that can only
fail later (and raise a `retrain_failed` alert about a model that never existed)."""

from __future__ import annotations

from typing import Any

from forecasting.demand_classes import DEMAND_CLASSES
from forecasting.families import family
from forecasting.families.hyperparameters import hyperparameter_problems
from forecasting.models import Product
from mlops.models import GLOBAL_SEGMENT, ModelVersion
from mlops.selectors import DEFAULT_MODEL_NAME, incumbent_for


def retrain_target_problems(*, name: str, segment: str) -> dict[str, list[str]]:
    """What is wrong with retraining `name`/`segment`, per field (empty: it may be asked for).

    A name is known when the registry has a version of it (the default name always is: the
    first retrain of a tenant creates it); a segment is `global`, a segment the name already
    has, or the segment of a department that has products."""
    names = set(ModelVersion.objects.values_list("name", flat=True).distinct())
    if name != DEFAULT_MODEL_NAME and name not in names:
        known = ", ".join(sorted(names | {DEFAULT_MODEL_NAME}))
        return {"name": [f"No model is named {name!r}; models: {known}."]}
    if segment == GLOBAL_SEGMENT or (
        segment.startswith("class:") and segment[6:] in DEMAND_CLASSES
    ):
        return {}
    if ModelVersion.objects.filter(name=name, segment=segment).exists():
        return {}
    department = segment.split(":", 1)[1] if segment.startswith("department:") else None
    if department and Product.objects.filter(department=department).exists():
        return {}
    departments = sorted(set(Product.objects.values_list("department", flat=True)))
    return {
        "segment": [
            f"No products in {segment!r}; segments are global, class:<demand class> or "
            f"department:<name> of {', '.join(departments) or 'none yet (import sales first)'}."
        ]
    }


def retrain_algorithm(*, name: str, segment: str, algorithm: str | None) -> str:
    """The algorithm a retrain will train: the one asked for, else the incumbent's, else the
    registry's default (as the retrain resolves it)."""
    from mlops.services.retraining import DEFAULT_ALGORITHM

    if algorithm:
        return algorithm
    incumbent = incumbent_for(name=name, segment=segment)
    return incumbent.algorithm if incumbent is not None else DEFAULT_ALGORITHM


def retrain_hyperparameter_problems(
    *, name: str, segment: str, algorithm: str | None, hyperparameters: Any
) -> dict[str, list[str]]:
    """Each hyperparameter the retrain's family would refuse, with why (empty: all fine)."""
    chosen = retrain_algorithm(name=name, segment=segment, algorithm=algorithm)
    problems = hyperparameter_problems(family(chosen), hyperparameters)
    return {key: [f"{message} ({chosen})"] for key, message in problems.items()}
