"""Proposing an experiment (its configuration checked) and a manager's review of it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from config import transitions
from config.text import has_text
from experiments.models import ModelExperiment
from experiments.services.lifecycle import (
    APPROVE_PERMISSION,
    PROPOSE_PERMISSION,
    _ensure_can,
    _move,
    _record,
    require_permission,
)
from forecasting.families import FAMILIES, build_model
from forecasting.models import Product
from mlops.models import DEFAULT_MODEL_NAME, GLOBAL_SEGMENT, ModelVersion
from mlops.selectors import get_champion_model

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

ExperimentType = ModelExperiment.ExperimentType
VersionStatus = ModelVersion.Status


MIN_WINDOW_DAYS = 28  # four weekly cycles: less cannot learn the weekday pattern
MAX_WINDOW_DAYS = 3650
# The configuration keys each experiment type accepts; the first is required.
CONFIGURATION_KEYS: dict[str, tuple[str, ...]] = {
    ExperimentType.SEGMENTATION: ("segments", "algorithm", "hyperparameters"),
    ExperimentType.ALGORITHM: ("algorithm", "hyperparameters"),
    ExperimentType.HYPERPARAMETERS: ("hyperparameters", "algorithm"),
    ExperimentType.TRAINING_WINDOW: ("window_days",),
    ExperimentType.FEATURE_ENGINEERING: ("features", "algorithm"),
}


def feature_selecting_families() -> list[str]:
    """Algorithms whose models take a list of features to use as a hyperparameter."""
    return sorted(
        name for name, family in FAMILIES.items() if "features" in family.default_hyperparameters
    )


def _baseline_algorithm(model_name: str) -> str | None:
    champion = get_champion_model(name=model_name, segment=GLOBAL_SEGMENT)
    return champion.algorithm if champion is not None else None


def _check_algorithm(value: Any, problems: list[str]) -> None:
    if value not in FAMILIES:
        problems.append(
            f"algorithm: {value!r} is not a model family; choose one of "
            f"{', '.join(sorted(FAMILIES))}."
        )


def _check_hyperparameters(value: Any, algorithm: str | None, problems: list[str]) -> None:
    if not isinstance(value, dict) or not value:
        problems.append("hyperparameters: give a non-empty object of name: value.")
        return
    if algorithm is None:
        problems.append("hyperparameters: name the algorithm they are for (no champion has one).")
        return
    try:
        build_model(algorithm, **value)
    except (TypeError, ValueError) as error:
        problems.append(f"hyperparameters: {error}")


def _check_segments(value: Any, problems: list[str]) -> None:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(each, str) and each.strip() for each in value)
    ):
        problems.append('segments: give a list of department names, e.g. ["Electronics"].')
        return
    if len(set(value)) != len(value):
        problems.append("segments: each department may be listed once.")
    known = set(Product.objects.values_list("department", flat=True).distinct())
    unknown = [each for each in value if each not in known]
    if unknown:
        problems.append(
            f"segments: no products in department(s) {', '.join(unknown)}; departments are "
            f"{', '.join(sorted(known)) or 'none yet (import sales first)'}."
        )


def _check_window_days(value: Any, problems: list[str]) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        problems.append("window_days: give a whole number of days.")
    elif not MIN_WINDOW_DAYS <= value <= MAX_WINDOW_DAYS:
        problems.append(f"window_days: must be between {MIN_WINDOW_DAYS} and {MAX_WINDOW_DAYS}.")


def _check_features(value: Any, algorithm: str | None, problems: list[str]) -> None:
    supporting = feature_selecting_families()
    if not supporting:
        problems.append(
            "features: none of the model families ("
            f"{', '.join(sorted(FAMILIES))}) supports choosing its features yet, so a "
            "feature-engineering experiment cannot be trained."
        )
        return
    if algorithm not in supporting:
        problems.append(f"features: choose an algorithm that selects features: {supporting}.")
    if not isinstance(value, list) or not value or not all(isinstance(f, str) for f in value):
        problems.append("features: give a non-empty list of feature names.")


def clean_configuration(
    *, experiment_type: str, configuration: Any, model_name: str, complete: bool = True
) -> tuple[dict[str, Any], list[str]]:
    """The configuration as stored, and what is wrong with it (empty when it is valid).

    With `complete` false (a proposal), the setting that defines the experiment may still be
    missing — a hypothesis can be approved before its recipe is settled — but whatever is given
    must be valid. Starting the experiment needs it complete.
    """
    if experiment_type not in CONFIGURATION_KEYS:
        return {}, []  # the experiment type's own error says it
    if not isinstance(configuration, dict):
        return {}, ["Give the configuration as an object."]
    accepted = CONFIGURATION_KEYS[experiment_type]
    problems: list[str] = []
    unknown = sorted(set(configuration) - set(accepted))
    if unknown:
        problems.append(
            f"{', '.join(unknown)}: not used in {experiment_type} experiments; they take "
            f"{', '.join(accepted)}."
        )
    required = accepted[0]
    if complete and required not in configuration:
        problems.append(f"{required}: required for a {experiment_type} experiment.")
    given = {key: value for key, value in configuration.items() if key in accepted}
    if "algorithm" in given:
        _check_algorithm(given["algorithm"], problems)
    algorithm = given.get("algorithm") or _baseline_algorithm(model_name)
    if "segments" in given:
        _check_segments(given["segments"], problems)
    if "hyperparameters" in given and (algorithm is None or algorithm in FAMILIES):
        _check_hyperparameters(given["hyperparameters"], algorithm, problems)
    if "window_days" in given:
        _check_window_days(given["window_days"], problems)
    if "features" in given:
        _check_features(given["features"], algorithm, problems)
    return dict(configuration), problems


@transaction.atomic
def propose_experiment(
    *,
    actor: AbstractBaseUser,
    name: str,
    hypothesis: str,
    experiment_type: str,
    configuration: dict[str, Any],
    success_metric: str = ModelExperiment.Metric.MAE,
    expected_improvement_pct: float,
    model_name: str = DEFAULT_MODEL_NAME,
) -> ModelExperiment:
    """Record a proposed experiment, waiting for a manager's approval; returns it. Raises
    PermissionDenied, or ValidationError with a message per bad field."""
    require_permission(actor, PROPOSE_PERMISSION, action="propose an experiment")
    experiment = ModelExperiment(
        name=name,
        hypothesis=hypothesis,
        experiment_type=experiment_type,
        model_name=model_name,
        success_metric=success_metric,
        expected_improvement_pct=expected_improvement_pct,
        proposed_by=actor,
    )
    errors: dict[str, list[str]] = {}
    try:
        experiment.full_clean(exclude=["configuration", "status"])
    except ValidationError as error:
        errors.update(error.message_dict)
    experiment.configuration, problems = clean_configuration(
        complete=False,
        experiment_type=experiment_type,
        configuration=configuration,
        model_name=model_name,
    )
    if problems:
        errors["configuration"] = problems
    if (
        "model_name" not in errors
        and not ModelVersion.objects.filter(name=model_name, status=VersionStatus.CHAMPION).exists()
    ):
        errors["model_name"] = [
            f"{model_name} has no champion to compare the experiment with; train one first."
        ]
    if errors:
        raise ValidationError(errors)
    experiment.save()
    _record(experiment, from_status="", actor=actor, note=hypothesis)
    return experiment


# -- review ---------------------------------------------------------------------------------------


@transaction.atomic
def approve_experiment(
    *, experiment: ModelExperiment, actor: AbstractBaseUser, note: str = ""
) -> ModelExperiment:
    """Approve a proposed experiment (it may now be started); returns it. Raises
    PermissionDenied or TransitionNotAllowed."""
    require_permission(actor, APPROVE_PERMISSION, action="approve an experiment")
    fresh = transitions.locked(experiment)
    _ensure_can(fresh, "approve", action="approve")
    _move(
        fresh,
        "approve",
        actor=actor,
        note=note,
        approved_by=actor,
        approved_at=timezone.now(),
        review_note=note,
    )
    return transitions.sync(experiment, fresh)


@transaction.atomic
def reject_experiment(
    *, experiment: ModelExperiment, actor: AbstractBaseUser, note: str
) -> ModelExperiment:
    """Decline a proposed experiment, saying why (final); returns it. Raises PermissionDenied,
    TransitionNotAllowed, or ValidationError without a note."""
    require_permission(actor, APPROVE_PERMISSION, action="reject an experiment")
    if not has_text(note):
        raise ValidationError({"note": ["Say why the experiment is rejected."]})
    fresh = transitions.locked(experiment)
    _ensure_can(fresh, "reject", action="reject")
    _move(
        fresh,
        "reject",
        actor=actor,
        note=note,
        approved_by=actor,
        rejected_at=timezone.now(),
        review_note=note,
    )
    return transitions.sync(experiment, fresh)
