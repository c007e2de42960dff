"""Writes of the experiment workflow: propose, review, train, shadow-test and decide."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from alerts.models import MLAlert
from alerts.services import raise_alert
from config import transitions
from config.text import has_text
from experiments.models import ExperimentEvent, ModelExperiment
from experiments.selectors import experiment_results
from experiments.stored_results import queue_experiment_results
from forecasting.families import FAMILIES, build_model
from forecasting.metrics import better_or_worse
from forecasting.models import Product
from mlops.locks import job_lock, job_running
from mlops.models import (
    DEFAULT_MODEL_NAME,
    GLOBAL_SEGMENT,
    DecisionKind,
    ModelRetrainingLog,
    ModelVersion,
    Trigger,
)
from mlops.selectors import get_champion_model
from mlops.services import (
    archive_version,
    promote_to_champion,
    retrain_forecast_model,
    start_shadow,
)
from mlops.services.lifecycle import record_event
from mlops.services.routing import department_segment
from tenants import roles
from tenants.roles import actor_label, has_permission, role_needed
from tenants.selectors import tenant_policy

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

logger = logging.getLogger(__name__)

Status = ModelExperiment.Status
ExperimentType = ModelExperiment.ExperimentType
Decision = ModelExperiment.Decision
VersionStatus = ModelVersion.Status

PROPOSE_PERMISSION = "experiments.propose_modelexperiment"
APPROVE_PERMISSION = "experiments.approve_modelexperiment"
RUN_PERMISSION = "experiments.run_modelexperiment"
PROMOTE_PERMISSION = "mlops.promote_modelversion"
ARCHIVE_PERMISSION = "mlops.reject_modelversion"

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


class ExperimentTrainingError(RuntimeError):
    """Training of one or more of an experiment's versions failed; the experiment is approved
    again and may be started once the cause is fixed (trained versions are kept)."""


# -- permissions, transitions and the experiment's own log ----------------------------------------


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


# -- proposing ------------------------------------------------------------------------------------


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


# -- training -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingPlan:
    """One experimental version to train: its segment and recipe (None: the registry's default,
    the recipe of the champion now serving the segment)."""

    segment: str
    algorithm: str | None = None
    hyperparameters: dict[str, Any] | None = None
    window_days: int | None = None


def training_plan(experiment: ModelExperiment) -> list[TrainingPlan]:
    """The versions an experiment trains: one per department for a segmentation, else one
    global version with the configured change."""
    config = experiment.configuration
    algorithm = config.get("algorithm")
    hyperparameters = config.get("hyperparameters")
    kind = experiment.experiment_type
    if kind == ExperimentType.SEGMENTATION:
        return [
            TrainingPlan(
                segment=department_segment(department),
                algorithm=algorithm,
                hyperparameters=hyperparameters,
            )
            for department in config["segments"]
        ]
    if kind == ExperimentType.HYPERPARAMETERS:
        # The champion's recipe with the named hyperparameters changed, not every other one
        # reset to the family's defaults.
        champion = get_champion_model(name=experiment.model_name, segment=GLOBAL_SEGMENT)
        algorithm = algorithm or (champion.algorithm if champion else None)
        base = champion.hyperparameters if champion and champion.algorithm == algorithm else {}
        hyperparameters = {**base, **hyperparameters}
    if kind == ExperimentType.TRAINING_WINDOW:
        return [TrainingPlan(segment=GLOBAL_SEGMENT, window_days=config["window_days"])]
    if kind == ExperimentType.FEATURE_ENGINEERING:
        hyperparameters = {**(hyperparameters or {}), "features": config["features"]}
    return [
        TrainingPlan(segment=GLOBAL_SEGMENT, algorithm=algorithm, hyperparameters=hyperparameters)
    ]


class ExperimentStartRunningError(RuntimeError):
    """Another process is training this experiment's versions right now."""


def _start_lock(experiment: ModelExperiment):
    return job_lock("experiment-start", str(experiment.pk))


def _linked_segments(experiment: ModelExperiment) -> set[str]:
    """Segments of the experiment's versions still under test (trained, not yet decided)."""
    return set(
        experiment.model_versions.filter(status__in=ModelVersion.AWAITING_DECISION).values_list(
            "segment", flat=True
        )
    )


def _trained(experiment: ModelExperiment) -> bool:
    """Whether every version the experiment trains is trained and linked to it."""
    linked = _linked_segments(experiment)
    return all(plan.segment in linked for plan in training_plan(experiment))


def _experiment_retrains(experiment: ModelExperiment):
    return ModelRetrainingLog.objects.filter(
        trigger=Trigger.EXPERIMENT, trigger_metadata__experiment_id=experiment.pk
    ).select_related("resulting_version")


@transaction.atomic
def _begin_training(*, experiment: ModelExperiment, actor: AbstractBaseUser) -> ModelExperiment:
    """Move the approved experiment to in_progress, or take over one whose start stopped
    half-way (in_progress, its versions not all trained, and nobody training them: the caller
    holds the start lock). Returns it fresh."""
    require_permission(actor, RUN_PERMISSION, action="start an experiment")
    fresh = transitions.locked(experiment)
    if fresh.status == Status.IN_PROGRESS and not _trained(fresh):
        _record(
            fresh,
            from_status=fresh.status,
            actor=actor,
            note="Training resumed: the start before stopped before it finished (its worker "
            "was lost); what it trained is kept.",
        )
        return fresh
    _ensure_can(fresh, "start", action="start")
    required = CONFIGURATION_KEYS.get(fresh.experiment_type, ("",))[0]
    if required and required not in (fresh.configuration or {}):
        raise ValidationError(
            {"configuration": [f"{required}: set it before starting the experiment."]}
        )
    plans = training_plan(fresh)
    _move(
        fresh,
        "start",
        actor=actor,
        note=f"Training {len(plans)} version(s): {', '.join(plan.segment for plan in plans)}",
        started_at=timezone.now(),
    )
    return fresh


@transaction.atomic
def _finish_training(
    *,
    experiment: ModelExperiment,
    actor: AbstractBaseUser,
    trained: list[ModelRetrainingLog],
    failed: dict[str, str],
) -> ModelExperiment:
    fresh = transitions.locked(experiment)
    versions = [log.resulting_version for log in trained]
    fresh.model_versions.add(*versions)
    evidence = {
        "trained": [
            {
                **_version_summary(log.resulting_version),
                "retrain_log": log.pk,
                "outcome": log.outcome,
            }
            for log in trained
        ],
        "failed": failed,
    }
    if failed:
        _move(
            fresh,
            "training_failed",
            actor=None,
            note="Training failed for "
            + "; ".join(f"{segment}: {error}" for segment, error in failed.items())
            + ". Fix the cause and start the experiment again.",
            evidence=evidence,
        )
    else:
        _record(
            fresh,
            from_status=fresh.status,
            actor=actor,
            note=f"Trained {', '.join(str(v) for v in versions) or 'nothing new'}",
            evidence=evidence,
        )
    return fresh


def _train_plan(
    *, experiment: ModelExperiment, actor: AbstractBaseUser, plan: TrainingPlan
) -> ModelRetrainingLog:
    """Train one planned version through the registry. A retrain of this plan that a lost
    worker left running is taken up again (the same log, one more attempt)."""
    from mlops.services.retraining import record_interrupted_attempt

    left_running = (
        _experiment_retrains(experiment)
        .filter(segment=plan.segment, status=ModelRetrainingLog.Status.RUNNING)
        .order_by("-pk")
        .first()
    )
    if left_running is not None:
        record_interrupted_attempt(left_running)
    return retrain_forecast_model(
        trigger=Trigger.EXPERIMENT,
        name=experiment.model_name,
        segment=plan.segment,
        algorithm=plan.algorithm,
        hyperparameters=plan.hyperparameters,
        window_days=plan.window_days,
        trigger_metadata={"experiment_id": experiment.pk, "experiment": experiment.name},
        requested_by=actor,
        log=left_running,
    )


def start_experiment(*, experiment: ModelExperiment, actor: AbstractBaseUser) -> ModelExperiment:
    """Move an approved experiment to in_progress and train its versions through the registry
    (for a segmentation, one per department, segment `department:<name>`), link them and
    return the experiment. Raises PermissionDenied, TransitionNotAllowed,
    ExperimentStartRunningError (another process trains it now), or ExperimentTrainingError (the
    experiment is approved again; what trained stays linked and is not trained twice on the
    next start).

    Safe to run again, whatever stopped the last run: under the experiment's start lock, an
    experiment left in_progress by a lost worker is resumed (versions its retrains registered
    are linked, a retrain left running is taken up), and one already trained is returned as is.

    The registry settles an experiment retrain as a challenger that waits for a person (never
    promoted on its own) and, being a challenger, it forecasts beside the champion from then on.
    """
    with _start_lock(experiment) as acquired:
        if not acquired:
            raise ExperimentStartRunningError(
                f"Experiment #{experiment.pk} is being started by another worker right now."
            )
        fresh = ModelExperiment.objects.get(pk=experiment.pk)
        if fresh.status == Status.IN_PROGRESS and _trained(fresh):
            return transitions.sync(experiment, fresh)  # a second delivery of a start that finished
        fresh = _begin_training(experiment=experiment, actor=actor)
        fresh, failed = _train_versions(experiment=fresh, actor=actor)
    transitions.sync(experiment, fresh)
    if failed:
        raise ExperimentTrainingError(fresh.events.order_by("-pk").first().note)
    return fresh


def _train_versions(
    *, experiment: ModelExperiment, actor: AbstractBaseUser
) -> tuple[ModelExperiment, dict[str, str]]:
    """Train the versions the experiment still lacks and link them; returns it fresh and the
    segments whose training failed, with why."""
    # Not one transaction: training takes minutes; each retrain commits its own log, so its
    # progress shows while it runs and what it trained survives a failure after it. The logs
    # are what a resumed start reads: a version registered for the experiment since it started
    # is not trained twice, even if the worker stopped before linking it.
    trained: list[ModelRetrainingLog] = list(
        _experiment_retrains(experiment).filter(
            status=ModelRetrainingLog.Status.SUCCEEDED,
            finished_at__gte=experiment.started_at,
            resulting_version__status__in=ModelVersion.AWAITING_DECISION,
        )
    )
    done = _linked_segments(experiment) | {log.segment for log in trained}
    failed: dict[str, str] = {}
    for plan in training_plan(experiment):
        if plan.segment in done:
            continue
        log = _train_plan(experiment=experiment, actor=actor, plan=plan)
        if log.status == ModelRetrainingLog.Status.SUCCEEDED and log.resulting_version:
            trained.append(log)
        else:
            failed[plan.segment] = (log.error or "no version registered").splitlines()[0]
    fresh = _finish_training(experiment=experiment, actor=actor, trained=trained, failed=failed)
    if not failed:
        queue_experiment_results(experiment=fresh)  # where the versions stand, for its page
    return fresh, failed


def start_interrupted(experiment: ModelExperiment) -> bool:
    """Whether the experiment is in_progress with versions left to train and nobody training
    them (its worker was lost): a person may start it again, and it resumes."""
    return (
        experiment.status == Status.IN_PROGRESS
        and not _trained(experiment)
        and not job_running("experiment-start", str(experiment.pk))
    )


def queue_start_experiment(
    *, experiment: ModelExperiment, actor: AbstractBaseUser
) -> ModelExperiment:
    """Check that `actor` may start the experiment now (approved, or a start that stopped
    half-way) and have a worker start it once committed (training takes minutes); returns it.
    Raises PermissionDenied or TransitionNotAllowed."""
    require_permission(actor, RUN_PERMISSION, action="start an experiment")
    if not start_interrupted(experiment):
        _ensure_can(experiment, "start", action="start")
    from experiments.tasks import start_experiment as start_task

    experiment_id, actor_id = experiment.pk, actor.pk
    transaction.on_commit(lambda: start_task.delay(experiment_id, actor_id))
    return experiment


# -- shadow testing -------------------------------------------------------------------------------


@transaction.atomic
def start_shadow_testing(
    *, experiment: ModelExperiment, actor: AbstractBaseUser
) -> ModelExperiment:
    """Put the experiment's versions in shadow (the daily forecast logs their answers beside
    the champion's) and move it to shadow_testing; returns it. Raises PermissionDenied,
    TransitionNotAllowed, or ValidationError when it has no version under test."""
    require_permission(actor, RUN_PERMISSION, action="start shadow testing")
    fresh = transitions.locked(experiment)
    _ensure_can(fresh, "start_shadow_testing", action="start shadow testing of")
    versions = list(fresh.model_versions.order_by("segment", "pk"))
    if not versions:
        raise ValidationError(f"Experiment #{fresh.pk} has no trained versions to shadow-test.")
    gone = [version for version in versions if version.status not in ModelVersion.AWAITING_DECISION]
    if gone:
        raise ValidationError(
            "Only versions under test can be shadow-tested: "
            + ", ".join(f"{version} is {version.status}" for version in gone)
        )
    reason = f"Shadow test of experiment #{fresh.pk} '{fresh.name}'"
    for version in versions:
        if version.status == VersionStatus.CANDIDATE:
            start_shadow(version=version, actor=actor, reason=reason)
            continue
        # The registry settles experiment retrains as challengers, which already forecast
        # beside the champion; the person's start of the test is logged with the version's
        # status changes all the same (its status does not change).
        record_event(
            version,
            from_status=version.status,
            actor=actor,
            reason=f"{reason} started (already forecasting beside the champion)",
            evidence={"experiment_id": fresh.pk, "routing_mode": version.routing_mode},
        )
    _move(
        fresh,
        "start_shadow_testing",
        actor=actor,
        note=reason,
        evidence={"versions": [_version_summary(version) for version in versions]},
        shadow_started_at=timezone.now(),
    )
    return transitions.sync(experiment, fresh)


# -- decision -------------------------------------------------------------------------------------


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
    errors: dict[str, list[str]] = {}
    if decision not in Decision.values:
        errors["decision"] = [f"Choose one of {', '.join(Decision.values)}."]
    if not has_text(rationale):
        errors["rationale"] = ["Say why the experiment is decided this way."]
    if errors:
        raise ValidationError(errors)
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
    about = {
        "experiment_id": fresh.pk,
        "experiment": fresh.name,
        "decision": decision,
        "decided_by": actor.get_username(),
        "approved_by": actor_label(fresh.approved_by) if fresh.approved_by_id else None,
        "success_metric": fresh.success_metric,
        "expected_improvement_pct": fresh.expected_improvement_pct,
    }
    for version in adopted:
        promoter, kind = promoters[version.pk]
        reason = f"Adopted by experiment #{fresh.pk} '{fresh.name}' ({decision}), decided by "
        reason += f"{actor.get_username()}: {rationale}"
        if kind == DecisionKind.OVERRIDE:
            reason += f" Override of the gate by {actor.get_username()}: {override_reason}"
        elif promoter is None:
            reason += (
                f" Promoted on their behalf: it met the success criterion approved by "
                f"{about['approved_by']}."
            )
        promote_to_champion(
            version=version,
            actor=promoter,
            reason=reason,
            evidence={
                "kind": kind,
                "experiment": about,
                "results": segment_results.get(version.segment, {}),
                **({"override_reason": override_reason} if kind == DecisionKind.OVERRIDE else {}),
            },
        )
        ModelVersion.objects.filter(pk=version.pk).update(decision_kind=kind, waiting_for="")
    archiver = actor if has_permission(actor, ARCHIVE_PERMISSION) else None
    for version in versions:
        if version in adopted or version.status not in ModelVersion.AWAITING_DECISION:
            continue
        # Experimental versions that never served: closing them is part of the decision.
        archive_version(
            version=version,
            actor=archiver,
            reason=f"Not adopted by experiment #{fresh.pk} '{fresh.name}' ({decision}), decided "
            f"by {actor.get_username()}: {rationale}",
            evidence={"experiment": about, "results": segment_results.get(version.segment, {})},
        )
    for version in versions:
        version.refresh_from_db()
    results["decision"] = {
        **about,
        "adopted": [_version_summary(version) for version in adopted],
        "archived": [_version_summary(v) for v in versions if v not in adopted],
    }
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
