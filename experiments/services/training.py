"""Starting an experiment: training its versions through the registry, then shadow-testing them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from config import transitions
from experiments.models import ModelExperiment
from experiments.services.lifecycle import (
    RUN_PERMISSION,
    _ensure_can,
    _move,
    _record,
    _version_summary,
    require_permission,
)
from experiments.services.proposal import CONFIGURATION_KEYS
from experiments.stored_results import queue_experiment_results
from mlops.locks import job_lock, job_running
from mlops.models import GLOBAL_SEGMENT, ModelRetrainingLog, ModelVersion, Trigger
from mlops.selectors import get_champion_model
from mlops.services import retrain_forecast_model, start_shadow
from mlops.services.lifecycle import record_event
from mlops.services.routing import department_segment

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

Status = ModelExperiment.Status
ExperimentType = ModelExperiment.ExperimentType
VersionStatus = ModelVersion.Status


class ExperimentTrainingError(RuntimeError):
    """Training of one or more of an experiment's versions failed; the experiment is approved
    again and may be started once the cause is fixed (trained versions are kept)."""


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

    The three steps a worker runs as a chord (experiments.tasks), here one after another in
    this process: begin, train each segment, finish. Safe to run again, whatever stopped the
    last run: an experiment left in_progress by a lost worker is resumed (versions its
    retrains registered are linked, a retrain left running is taken up), and one already
    trained is returned as is.

    The registry settles an experiment retrain as a challenger that waits for a person (never
    promoted on its own) and, being a challenger, it forecasts beside the champion from then on.
    """
    fresh, plans = begin_experiment_training(experiment=experiment, actor=actor)
    for plan in plans:
        train_experiment_segment(experiment=fresh, actor=actor, segment=plan.segment)
    fresh, failed = finish_experiment_training(experiment=fresh, actor=actor)
    transitions.sync(experiment, fresh)
    if failed:
        raise ExperimentTrainingError(fresh.events.order_by("-pk").first().note)
    return fresh


def begin_experiment_training(
    *, experiment: ModelExperiment, actor: AbstractBaseUser
) -> tuple[ModelExperiment, list[TrainingPlan]]:
    """Move the approved experiment to in_progress (or resume one whose start stopped
    half-way) under its start lock; returns it fresh and the versions still to train (none for
    one already trained). Raises PermissionDenied, TransitionNotAllowed or
    ExperimentStartRunningError."""
    with _start_lock(experiment) as acquired:
        if not acquired:
            raise ExperimentStartRunningError(
                f"Experiment #{experiment.pk} is being started by another worker right now."
            )
        fresh = ModelExperiment.objects.get(pk=experiment.pk)
        if fresh.status == Status.IN_PROGRESS and _trained(fresh):
            return transitions.sync(experiment, fresh), []  # a second delivery of a finished start
        if fresh.status == Status.IN_PROGRESS and _segments_training(fresh):
            raise ExperimentStartRunningError(
                f"Experiment #{experiment.pk}'s versions are being trained right now."
            )
        fresh = _begin_training(experiment=experiment, actor=actor)
        _, done = _registered(fresh)
        return fresh, [plan for plan in training_plan(fresh) if plan.segment not in done]


def _segment_lock(experiment: ModelExperiment, segment: str):
    return job_lock("experiment-segment", str(experiment.pk), segment)


def train_experiment_segment(
    *, experiment: ModelExperiment, actor: AbstractBaseUser, segment: str
) -> ModelRetrainingLog | None:
    """Train the experiment's planned version of `segment` once, whatever the deliveries:
    returns its retrain log (the one already trained, if any), or None when the experiment no
    longer trains it (moved on, or the segment is not in its plan). Raises
    ExperimentStartRunningError while another process trains this segment."""
    with _segment_lock(experiment, segment) as acquired:
        if not acquired:
            raise ExperimentStartRunningError(
                f"Experiment #{experiment.pk}'s {segment} version is being trained right now."
            )
        fresh = ModelExperiment.objects.get(pk=experiment.pk)
        plan = next((plan for plan in training_plan(fresh) if plan.segment == segment), None)
        if fresh.status != Status.IN_PROGRESS or plan is None:
            return None
        trained, done = _registered(fresh)
        if segment in done:
            return next((log for log in trained if log.segment == segment), None)
        return _train_plan(experiment=fresh, actor=actor, plan=plan)


def finish_experiment_training(
    *, experiment: ModelExperiment, actor: AbstractBaseUser
) -> tuple[ModelExperiment, dict[str, str]]:
    """Link the versions the experiment's retrains registered, or record which segments failed
    and why (the experiment is then approved again); returns it fresh and the failures. Once,
    whatever the deliveries: an experiment already linked, or no longer in progress, is left as
    it is. Raises ExperimentStartRunningError while a segment is still being trained."""
    with _start_lock(experiment) as acquired:
        if not acquired:
            raise ExperimentStartRunningError(
                f"Experiment #{experiment.pk} is being started by another worker right now."
            )
        fresh = ModelExperiment.objects.get(pk=experiment.pk)
        if fresh.status != Status.IN_PROGRESS or _trained(fresh):
            return fresh, {}
        if _segments_training(fresh):
            raise ExperimentStartRunningError(
                f"Experiment #{experiment.pk} has versions still being trained."
            )
        trained, failed = _training_outcomes(fresh)
        fresh = _finish_training(experiment=fresh, actor=actor, trained=trained, failed=failed)
    if not failed:
        queue_experiment_results(experiment=fresh)  # where the versions stand, for its page
    return fresh, failed


def _registered(experiment: ModelExperiment) -> tuple[list[ModelRetrainingLog], set[str]]:
    """The retrains that registered the experiment's versions since it started, and the
    segments done: theirs and those of the versions linked already.

    Training is not one transaction: it takes minutes; each retrain commits its own log, so its
    progress shows while it runs and what it trained survives a failure after it. The logs are
    what a resumed start reads: a version registered for the experiment since it started is not
    trained twice, even if the worker stopped before linking it."""
    trained = list(
        _experiment_retrains(experiment).filter(
            status=ModelRetrainingLog.Status.SUCCEEDED,
            finished_at__gte=experiment.started_at,
            resulting_version__status__in=ModelVersion.AWAITING_DECISION,
        )
    )
    return trained, _linked_segments(experiment) | {log.segment for log in trained}


def _training_outcomes(
    experiment: ModelExperiment,
) -> tuple[list[ModelRetrainingLog], dict[str, str]]:
    """The retrains that registered the experiment's versions since it started (`_registered`),
    and the planned segments without one, each with why (its latest retrain's error)."""
    trained, done = _registered(experiment)
    failed: dict[str, str] = {}
    for plan in training_plan(experiment):
        if plan.segment in done:
            continue
        latest = (
            _experiment_retrains(experiment)
            .filter(segment=plan.segment, created_at__gte=experiment.started_at)
            .order_by("-pk")
            .first()
        )
        error = (latest.error if latest is not None else "") or "no version registered"
        failed[plan.segment] = error.splitlines()[0]
    return trained, failed


def _segments_training(experiment: ModelExperiment) -> bool:
    """Whether some process trains one of the experiment's versions now."""
    return any(
        job_running("experiment-segment", str(experiment.pk), plan.segment)
        for plan in training_plan(experiment)
    )


def start_interrupted(experiment: ModelExperiment) -> bool:
    """Whether the experiment is in_progress with versions left to train and nobody training
    them (its worker was lost): a person may start it again, and it resumes."""
    return (
        experiment.status == Status.IN_PROGRESS
        and not _trained(experiment)
        and not job_running("experiment-start", str(experiment.pk))
        and not _segments_training(experiment)
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
