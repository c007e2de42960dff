"""The experiment lifecycle's scaffolding: who may act, which moves are allowed, and its log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from config import transitions
from experiments.models import ExperimentEvent, ModelExperiment
from mlops.models import ModelVersion
from tenants import roles
from tenants.roles import actor_label

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


PROPOSE_PERMISSION = "experiments.propose_modelexperiment"
APPROVE_PERMISSION = "experiments.approve_modelexperiment"
RUN_PERMISSION = "experiments.run_modelexperiment"


def require_permission(actor: AbstractBaseUser | None, permission: str, *, action: str) -> None:
    """Raise PermissionDenied, naming the role needed, unless `actor` holds `permission`.

    Experiments are led by people: every step needs a user (the system acts only on their
    behalf, inside a step a person took)."""
    roles.require_permission(actor, permission, action=action)


def allowed_moves(experiment: ModelExperiment) -> list[str]:
    """The transitions a person may make from the experiment's current status."""
    return transitions.allowed_moves(experiment)


def _describe(experiment: ModelExperiment) -> str:
    return f"experiment #{experiment.pk} '{experiment.name}'"


def _ensure_can(experiment: ModelExperiment, method_name: str, *, action: str) -> None:
    """Raise TransitionNotAllowed, listing the moves allowed now, if the FSM refuses the move."""
    transitions.ensure_can(
        experiment,
        method_name,
        action=action,
        describe=_describe(experiment),
    )


def _record(
    experiment: ModelExperiment,
    *,
    from_status: str,
    actor: AbstractBaseUser | None,
    note: str = "",
    evidence: dict[str, Any] | None = None,
) -> ExperimentEvent:
    return ExperimentEvent.objects.create(
        experiment=experiment,
        from_status=from_status,
        to_status=experiment.status,
        actor=actor,
        actor_label=actor_label(actor),
        note=note,
        evidence=evidence or {},
    )


def _move(
    experiment: ModelExperiment,
    method_name: str,
    *,
    actor: AbstractBaseUser | None,
    note: str = "",
    evidence: dict[str, Any] | None = None,
    **fields: Any,
) -> ModelExperiment:
    """Run one transition on a locked, fresh experiment, save it and log it."""
    return transitions.apply_transition(
        experiment,
        method_name,
        actor=actor,
        action=method_name.replace("_", " "),
        describe=_describe(experiment),
        audit=lambda from_status: _record(
            experiment, from_status=from_status, actor=actor, note=note, evidence=evidence
        ),
        **fields,
    )


def _version_summary(version: ModelVersion) -> dict[str, Any]:
    return {
        "id": version.pk,
        "version": version.version,
        "segment": version.segment,
        "algorithm": version.algorithm,
        "status": version.status,
    }
