"""Deciding a shadow-tested experiment: the adoption gate, promotions, archives and the alert."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from alerts.models import MLAlert
from alerts.services import raise_alert
from config import transitions
from config.text import has_text
from experiments.models import ModelExperiment
from experiments.selectors import experiment_results
from experiments.services.lifecycle import (
    RUN_PERMISSION,
    _ensure_can,
    _move,
    _version_summary,
    require_permission,
)
from forecasting.metrics import better_or_worse
from mlops.models import DecisionKind, ModelVersion
from mlops.services import archive_version, promote_to_champion
from tenants.roles import actor_label, has_permission, role_needed
from tenants.selectors import tenant_policy

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

Decision = ModelExperiment.Decision


PROMOTE_PERMISSION = "mlops.promote_modelversion"
ARCHIVE_PERMISSION = "mlops.reject_modelversion"


def _adopted(
    *,
    decision: str,
    versions: list[ModelVersion],
    adopted_versions: Iterable[ModelVersion | int] | None,
) -> list[ModelVersion]:
    """The experiment's versions the decision adopts; raises ValidationError for a choice
    that does not fit the decision."""
    by_pk = {version.pk: version for version in versions}
    chosen = None
    if adopted_versions is not None:
        chosen = {getattr(each, "pk", each) for each in adopted_versions}
    if decision == Decision.ADOPT:
        if chosen is not None and chosen != set(by_pk):
            raise ValidationError(
                {"adopted_versions": ["Adopt takes every version; choose partial_adopt."]}
            )
        return versions
    if decision == Decision.REJECT:
        if chosen:
            raise ValidationError({"adopted_versions": ["A rejection adopts no version."]})
        return []
    if not chosen:
        raise ValidationError({"adopted_versions": ["Name the versions partial_adopt adopts."]})
    strangers = sorted(chosen - set(by_pk))
    if strangers:
        raise ValidationError(
            {"adopted_versions": [f"Version id(s) {strangers} are not this experiment's."]}
        )
    if chosen == set(by_pk):
        raise ValidationError(
            {"adopted_versions": ["Every version is chosen: the decision is adopt."]}
        )
    return [version for version in versions if version.pk in chosen]


def adoption_gate(*, experiment: ModelExperiment, result: dict[str, Any]) -> list[str]:
    """What keeps a version from adoption on the evidence (empty when it passes): the approved
    success criterion, the tenant's confidence threshold, and its minimum of shadow days."""
    policy = tenant_policy()
    failures = []
    metric = experiment.success_metric
    improvement = (result.get("improvement_pct") or {}).get(metric)
    if not result.get("meets_success_criterion"):
        failures.append(
            f"{metric} {better_or_worse(improvement)}, where the approved criterion is "
            f"{experiment.expected_improvement_pct:g}% better"
        )
    confidence = (result.get("paired_test") or {}).get("confidence") or 0.0
    if confidence < policy.promotion_min_confidence:
        failures.append(f"confidence {confidence:.3f}, needs {policy.promotion_min_confidence:g}")
    days = int(result.get("shadow_days_with_actuals") or 0)
    if result.get("source") != "shadow" or days < policy.min_shadow_days:
        failures.append(f"{days} shadow day(s) with actuals, needs {policy.min_shadow_days}")
    return failures


def _promoter(
    *,
    experiment: ModelExperiment,
    actor: AbstractBaseUser,
    version: ModelVersion,
    result: dict[str, Any],
    override_reason: str,
) -> tuple[AbstractBaseUser | None, str]:
    """Who promotes an adopted version, and the kind of decision: a version that passes the
    gate is promoted by the actor when they may promote, else by the system on their behalf (a
    review); one that fails it only by a manager who gives an override reason (an override).
    Raises PermissionDenied or ValidationError naming what the version missed."""
    failures = adoption_gate(experiment=experiment, result=result)
    may_promote = has_permission(actor, PROMOTE_PERMISSION)
    if not failures:
        return (actor if may_promote else None), DecisionKind.REVIEW
    missed = "; ".join(failures)
    if not may_promote:
        raise PermissionDenied(
            f"{actor.get_username()} may not adopt {version} on its own: it does not pass the "
            f"gate ({missed}). Adopting it anyway is an override, which needs the "
            f"{role_needed(PROMOTE_PERMISSION)} role ({PROMOTE_PERMISSION})."
        )
    if not has_text(override_reason):
        raise ValidationError(
            {
                "override_reason": [
                    f"{version.version} [{version.segment}] does not pass the gate ({missed}); "
                    "adopting it is an override: say why."
                ]
            }
        )
    return actor, DecisionKind.OVERRIDE


@transaction.atomic
def complete_experiment(
    *,
    experiment: ModelExperiment,
    actor: AbstractBaseUser,
    decision: str,
    rationale: str,
    adopted_versions: Iterable[ModelVersion | int] | None = None,
    override_reason: str = "",
) -> ModelExperiment:
    """Decide a shadow-tested experiment: adopt promotes each of its versions to champion of
    its segment, partial_adopt promotes the chosen ones and archives the rest, reject archives
    them all; the system's results are kept on the experiment and an `experiment_complete`
    alert is raised. Returns it. Raises PermissionDenied, TransitionNotAllowed or
    ValidationError; a refusal changes nothing.

    Who may adopt: a data scientist completes experiments, but a champion serves every store's
    replenishment, which only the promote permission (ml_manager) may change. The manager's
    approval authorised the hypothesis and its success criterion, not results that did not
    exist yet. Adoption passes the same gate as any promotion: the approved criterion met,
    the tenant's confidence reached, on at least its minimum of shadow days. The system
    promotes on a data scientist's behalf only versions that pass it, recorded as the system's
    move with the adopter and the approver in the evidence; adopting a version that does not
    is an override, which only a manager may make, with `override_reason`, recorded as such.
    """
    require_permission(actor, RUN_PERMISSION, action="complete an experiment")
    fresh = transitions.locked(experiment)
    _ensure_can(fresh, "complete", action="complete")
    _check_decision(decision=decision, rationale=rationale)
    versions = list(fresh.model_versions.order_by("segment", "pk"))
    adopted = _adopted(decision=decision, versions=versions, adopted_versions=adopted_versions)
    results = experiment_results(experiment=fresh)
    segment_results = results["segments"]
    # Every refusal is found before anything moves.
    promoters = {
        version.pk: _promoter(
            experiment=fresh,
            actor=actor,
            version=version,
            result=segment_results.get(version.segment, {}),
            override_reason=override_reason,
        )
        for version in adopted
    }
    about = _decision_evidence(experiment=fresh, actor=actor, decision=decision)
    for version in adopted:
        _promote_adopted(
            version=version,
            promoter=promoters[version.pk],
            actor=actor,
            about=about,
            rationale=rationale,
            override_reason=override_reason,
            result=segment_results.get(version.segment, {}),
        )
    _archive_not_adopted(
        versions=versions,
        adopted=adopted,
        actor=actor,
        about=about,
        rationale=rationale,
        segment_results=segment_results,
    )
    results["decision"] = _decision_record(about=about, versions=versions, adopted=adopted)
    _move(
        fresh,
        "complete",
        actor=actor,
        note=rationale,
        evidence={"decision": decision, "adopted": [version.pk for version in adopted]},
        decision=decision,
        decision_rationale=rationale,
        completed_by=actor,
        completed_at=timezone.now(),
        results=results,
    )
    _raise_completion_alert(experiment=fresh, adopted=adopted, results=results)
    return transitions.sync(experiment, fresh)


def _decision_record(
    *, about: dict[str, Any], versions: list[ModelVersion], adopted: list[ModelVersion]
) -> dict[str, Any]:
    """The decision as kept in the experiment's results, with each version as it now stands."""
    for version in versions:
        version.refresh_from_db()
    return {
        **about,
        "adopted": [_version_summary(version) for version in adopted],
        "archived": [_version_summary(v) for v in versions if v not in adopted],
    }


def _check_decision(*, decision: str, rationale: str) -> None:
    """Raise ValidationError unless the decision is one of the choices and says why."""
    errors: dict[str, list[str]] = {}
    if decision not in Decision.values:
        errors["decision"] = [f"Choose one of {', '.join(Decision.values)}."]
    if not has_text(rationale):
        errors["rationale"] = ["Say why the experiment is decided this way."]
    if errors:
        raise ValidationError(errors)


def _decision_evidence(
    *, experiment: ModelExperiment, actor: AbstractBaseUser, decision: str
) -> dict[str, Any]:
    """Who decided what, on which approved criterion: the evidence of every move it makes."""
    return {
        "experiment_id": experiment.pk,
        "experiment": experiment.name,
        "decision": decision,
        "decided_by": actor.get_username(),
        "approved_by": (actor_label(experiment.approved_by) if experiment.approved_by_id else None),
        "success_metric": experiment.success_metric,
        "expected_improvement_pct": experiment.expected_improvement_pct,
    }


def _promote_adopted(
    *,
    version: ModelVersion,
    promoter: tuple[AbstractBaseUser | None, str],
    actor: AbstractBaseUser,
    about: dict[str, Any],
    rationale: str,
    override_reason: str,
    result: dict[str, Any],
) -> None:
    """Promote one adopted version to champion of its segment, as `_promoter` decided."""
    promoted_by, kind = promoter
    reason = f"Adopted by experiment #{about['experiment_id']} '{about['experiment']}' "
    reason += f"({about['decision']}), decided by {actor.get_username()}: {rationale}"
    if kind == DecisionKind.OVERRIDE:
        reason += f" Override of the gate by {actor.get_username()}: {override_reason}"
    elif promoted_by is None:
        reason += (
            f" Promoted on their behalf: it met the success criterion approved by "
            f"{about['approved_by']}."
        )
    promote_to_champion(
        version=version,
        actor=promoted_by,
        reason=reason,
        evidence={
            "kind": kind,
            "experiment": about,
            "results": result,
            **({"override_reason": override_reason} if kind == DecisionKind.OVERRIDE else {}),
        },
    )
    ModelVersion.objects.filter(pk=version.pk).update(decision_kind=kind, waiting_for="")


def _archive_not_adopted(
    *,
    versions: list[ModelVersion],
    adopted: list[ModelVersion],
    actor: AbstractBaseUser,
    about: dict[str, Any],
    rationale: str,
    segment_results: dict[str, Any],
) -> None:
    """Archive the experiment's versions the decision leaves out that still await it."""
    archiver = actor if has_permission(actor, ARCHIVE_PERMISSION) else None
    for version in versions:
        if version in adopted or version.status not in ModelVersion.AWAITING_DECISION:
            continue
        # Experimental versions that never served: closing them is part of the decision.
        archive_version(
            version=version,
            actor=archiver,
            reason=f"Not adopted by experiment #{about['experiment_id']} "
            f"'{about['experiment']}' ({about['decision']}), decided "
            f"by {actor.get_username()}: {rationale}",
            evidence={"experiment": about, "results": segment_results.get(version.segment, {})},
        )


def _raise_completion_alert(
    *, experiment: ModelExperiment, adopted: list[ModelVersion], results: dict[str, Any]
) -> MLAlert:
    metric = experiment.success_metric
    lines = []
    for segment, result in results["segments"].items():
        improvement = (result.get("improvement_pct") or {}).get(metric)
        shown = better_or_worse(improvement)
        verdict = "adopted" if any(v.segment == segment for v in adopted) else "not adopted"
        lines.append(f"{segment}: {metric} {shown} ({result.get('source')}), {verdict}")
    label = Decision(experiment.decision).label.lower()
    return raise_alert(
        alert_type=MLAlert.AlertType.EXPERIMENT_COMPLETE,
        severity=MLAlert.Severity.INFO,
        title=f"Experiment complete: {experiment.name} ({label})",
        message=f"{experiment.decision_rationale}\n\n" + "\n".join(lines),
        metadata={
            "experiment_id": experiment.pk,
            "decision": experiment.decision,
            "adopted": [version.pk for version in adopted],
            "improvement_pct": {
                segment: (result.get("improvement_pct") or {}).get(metric)
                for segment, result in results["segments"].items()
            },
        },
        experiment=experiment,
    )
