"""Retraining: log it, train on the configured window, register a candidate, let the arena judge."""

from __future__ import annotations

import datetime as dt
import logging
import traceback
from typing import TYPE_CHECKING, Any

import numpy as np
from django.db import transaction
from django.utils import timezone

from forecasting import artifacts
from forecasting.families import build_model
from mlops.models import GLOBAL_SEGMENT, ModelRetrainingLog, ModelVersion, Trigger
from mlops.selectors import current_tenant, get_challenger_model, incumbent_for
from mlops.services.data import (
    DEFAULT_WINDOW_DAYS,
    latest_sales_day,
    load_panel,
    window_days_of,
)
from mlops.services.lifecycle import (
    ChampionChanged,
    archive_version,
    make_challenger,
    require_permission,
)
from mlops.services.promotion import (
    DEFAULT_EVALUATION_WINDOWS,
    PromotionDecision,
    Recipe,
    apply_decision,
    judge_candidate,
    record_evaluation,
)
from mlops.services.registry import register_model_version, store_artifact

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

logger = logging.getLogger(__name__)

DEFAULT_ALGORITHM = "xgboost"
# After drift the last two years are mostly the old regime. 180 days keeps 26 weekly cycles
# for the weekday pattern while the post-shift weeks weigh four times more than in 730 days;
# the yearly pattern is lost, which matters less than following the new level quickly.
DRIFT_WINDOW_DAYS = 180
# Retrains whose result the system may promote on its own; the others wait for a person.
AUTO_PROMOTING = (Trigger.SCHEDULED, Trigger.MANUAL)
OUTCOME_PROMOTED = "promoted"
OUTCOME_FIRST = "champion (first)"
OUTCOME_CHALLENGER = "challenger"
OUTCOME_ARCHIVED = "archived"
# A queued or running retrain of the same model newer than this absorbs a new request.
DUPLICATE_REQUEST_WINDOW = dt.timedelta(hours=6)


def default_window_days(trigger: str) -> int:
    return DRIFT_WINDOW_DAYS if trigger == Trigger.DRIFT_DETECTED else DEFAULT_WINDOW_DAYS


@transaction.atomic
def queue_retrain(
    *,
    trigger: str,
    name: str = "demand_forecast",
    segment: str = GLOBAL_SEGMENT,
    algorithm: str | None = None,
    hyperparameters: dict[str, Any] | None = None,
    window_days: int | None = None,
    trigger_metadata: dict[str, Any] | None = None,
    requested_by: AbstractBaseUser | None = None,
) -> ModelRetrainingLog:
    """Log a retrain as queued and send it to a worker once committed; a retrain of the same
    name/segment still queued or running is returned instead of a second one. Raises
    PermissionDenied for a user without the right to request retrains, ValueError for an
    unknown trigger."""
    if trigger not in Trigger.values:
        raise ValueError(f"Unknown trigger {trigger!r}.")
    require_permission(requested_by, "mlops.request_retrain", action="request a retrain")
    pending = (
        ModelRetrainingLog.objects.select_for_update()
        .filter(
            name=name,
            segment=segment,
            status__in=[ModelRetrainingLog.Status.QUEUED, ModelRetrainingLog.Status.RUNNING],
            created_at__gte=timezone.now() - DUPLICATE_REQUEST_WINDOW,
        )
        .first()
    )
    if pending is not None:
        return pending
    log = ModelRetrainingLog.objects.create(
        name=name,
        segment=segment,
        trigger=trigger,
        trigger_metadata=trigger_metadata or {},
        requested_by=requested_by,
        algorithm=algorithm or "",
        hyperparameters=hyperparameters or {},
        window_days=window_days,
    )
    from mlops.tasks import retrain_model

    transaction.on_commit(lambda: retrain_model.delay(log.pk))
    return log


def queue_scheduled_retrains() -> list[ModelRetrainingLog]:
    """Queue a scheduled retrain of every name/segment that has a champion; returns the logs."""
    groups = (
        ModelVersion.objects.filter(status=ModelVersion.Status.CHAMPION)
        .values_list("name", "segment")
        .order_by("name", "segment")
    )
    return [
        queue_retrain(trigger=Trigger.SCHEDULED, name=name, segment=segment)
        for name, segment in groups
    ]


def _resolve_recipe(
    *,
    log: ModelRetrainingLog,
    incumbent: ModelVersion | None,
    algorithm: str | None,
    hyperparameters: dict[str, Any] | None,
    window_days: int | None,
) -> tuple[str, dict[str, Any], int]:
    """The recipe to train: what was asked, else the incumbent champion's, else the default."""
    algorithm = algorithm or log.algorithm or (incumbent.algorithm if incumbent else None)
    algorithm = algorithm or DEFAULT_ALGORITHM
    if hyperparameters is None:
        hyperparameters = log.hyperparameters or None
    if hyperparameters is None and incumbent is not None and incumbent.algorithm == algorithm:
        hyperparameters = dict(incumbent.hyperparameters)
    window_days = window_days or log.window_days or default_window_days(log.trigger)
    return algorithm, dict(hyperparameters or {}), int(window_days)


def _fail(log: ModelRetrainingLog, error: BaseException) -> ModelRetrainingLog:
    log.status = ModelRetrainingLog.Status.FAILED
    log.finished_at = timezone.now()
    detail = "".join(traceback.format_exception(error)[-8:])
    log.error = f"{type(error).__name__}: {error}\n\n{detail}"[:10_000]
    log.save()
    logger.error("Retrain %s of %s/%s failed: %s", log.pk, log.name, log.segment, error)
    return log


def retrain_forecast_model(
    *,
    trigger: str,
    name: str = "demand_forecast",
    segment: str = GLOBAL_SEGMENT,
    algorithm: str | None = None,
    hyperparameters: dict[str, Any] | None = None,
    window_days: int | None = None,
    trigger_metadata: dict[str, Any] | None = None,
    requested_by: AbstractBaseUser | None = None,
    log: ModelRetrainingLog | None = None,
    evaluation_windows: int = DEFAULT_EVALUATION_WINDOWS,
) -> ModelRetrainingLog:
    """Train `name`/`segment` on the last `window_days` of sales (default 730; 180 after drift),
    register the result as a candidate and settle it: scheduled and manual retrains are
    promoted when they clear the gate, else kept as challenger or archived; drift, new-products
    and experiment retrains become challenger and wait for a person. Returns the log, whose
    `status`, `outcome`, `error` and `resulting_version` say what happened; never raises for a
    failed retrain (the log records it, keeping any trained artifact)."""
    if log is None:
        log = ModelRetrainingLog.objects.create(
            name=name,
            segment=segment,
            trigger=trigger,
            trigger_metadata=trigger_metadata or {},
            requested_by=requested_by,
        )
    incumbent = incumbent_for(name=log.name, segment=log.segment)
    algorithm, hyperparameters, window_days = _resolve_recipe(
        log=log,
        incumbent=incumbent,
        algorithm=algorithm,
        hyperparameters=hyperparameters,
        window_days=window_days,
    )
    # Each step below commits on its own: the log says what is going on while the work runs,
    # and what training produced survives whatever fails after it.
    log.status = ModelRetrainingLog.Status.RUNNING
    log.started_at = timezone.now()
    log.finished_at = None
    log.error = ""
    log.attempts += 1
    log.algorithm, log.hyperparameters, log.window_days = algorithm, hyperparameters, window_days
    log.save()

    recipe = Recipe(
        algorithm=algorithm,
        hyperparameters=hyperparameters,
        window_days=window_days,
        segment=log.segment,
    )
    try:
        panel, training, artifact = _train(
            log=log, recipe=recipe, incumbent=incumbent, evaluation_windows=evaluation_windows
        )
    except Exception as error:
        return _fail(log, error)

    log.artifact.name = store_artifact(name=log.name, segment=log.segment, artifact=artifact)
    log.artifact_sha256 = artifact.sha256
    log.save()

    try:
        decision = judge_candidate(
            name=log.name,
            candidate=recipe,
            candidate_version=None,
            panel=panel,
            tenant=current_tenant(),
            windows=evaluation_windows,
        )
        with transaction.atomic():
            version = register_model_version(
                name=log.name,
                segment=log.segment,
                algorithm=algorithm,
                artifact=artifact,
                metrics=decision.candidate_metrics,
                trigger=log.trigger,
                parent=incumbent,
                created_by=log.requested_by,
                training_start=training["start"],
                training_end=training["end"],
                training_rows=training["rows"],
            )
            log.outcome = settle_candidate(version=version, decision=decision, trigger=log.trigger)
            log.resulting_version = version
            log.status = ModelRetrainingLog.Status.SUCCEEDED
            log.finished_at = timezone.now()
            log.save()
    except Exception as error:
        return _fail(log, error)
    return log


def _train(
    *,
    log: ModelRetrainingLog,
    recipe: Recipe,
    incumbent: ModelVersion | None,
    evaluation_windows: int,
):
    """Load enough sales to train the recipe and to judge it, fit it, serialise it."""
    end = latest_sales_day()
    if end is None:
        raise ValueError("There are no sales to train on.")
    longest = max(recipe.window_days, window_days_of(incumbent) if incumbent else 0)
    start = end - dt.timedelta(days=longest + evaluation_windows * 7 - 1)
    # Every series, not only the segment's: a segment candidate is judged against the global
    # champion, whose recipe refits on all of them.
    panel = load_panel(start=start, end=end)
    first_day = end - dt.timedelta(days=recipe.window_days - 1)
    training = panel.select(recipe.series_mask(panel)).window(first_day, end)
    if training.n_series == 0 or training.n_days == 0:
        raise ValueError(f"There are no sales of {recipe.segment} from {first_day} to {end}.")
    rows = int(np.count_nonzero(~np.isnan(training.quantity)))
    log.rows = rows
    log.data_start = training.first_day.date()
    log.data_end = training.last_day.date()
    log.save()
    model = build_model(recipe.algorithm, **recipe.hyperparameters).fit(training)
    artifact = artifacts.serialize(model)
    summary = {"start": log.data_start, "end": log.data_end, "rows": rows}
    return panel, summary, artifact


def _promising(decision: PromotionDecision) -> bool:
    """Better on both errors and no worse on coverage, only not (yet) by enough."""
    improvement = decision.improvement
    return bool(
        decision.checks.get("coverage")
        and (improvement.get("mae_pct") or 0) > 0
        and (improvement.get("mape_pct") or 0) > 0
    )


def _awaits_a_person(challenger: ModelVersion | None) -> bool:
    """Whether a challenger waits for a person's review (an automatic retrain leaves it be):
    it came from drift, new products or an experiment, or a person made it challenger."""
    if challenger is None:
        return False
    if challenger.trigger not in AUTO_PROMOTING:
        return True
    made = challenger.transitions.filter(to_status=ModelVersion.Status.CHALLENGER).first()
    return made is not None and made.actor_id is not None


def settle_candidate(*, version: ModelVersion, decision: PromotionDecision, trigger: str) -> str:
    """Act on the verdict for a freshly registered candidate; returns the outcome word."""
    if trigger not in AUTO_PROMOTING:
        decision = record_evaluation(version=version, decision=decision)
        make_challenger(
            version=version,
            actor=None,
            reason=f"Retrained after {Trigger(trigger).label.lower()}: waits for a person to "
            f"review and promote it. {decision.reason}",
            evidence=decision.as_evidence(),
        )
        return OUTCOME_CHALLENGER
    if decision.promote:
        try:
            with transaction.atomic():
                decision = apply_decision(version=version, decision=decision, actor=None)
        except ChampionChanged as error:
            decision = record_evaluation(version=version, decision=decision)
            make_challenger(
                version=version, actor=None, reason=str(error), evidence=decision.as_evidence()
            )
            return OUTCOME_CHALLENGER
        return OUTCOME_FIRST if decision.source == "first_model" else OUTCOME_PROMOTED
    decision = record_evaluation(version=version, decision=decision)
    evidence = decision.as_evidence()
    waiting = get_challenger_model(name=version.name, segment=version.segment)
    if _promising(decision) and not _awaits_a_person(waiting):
        make_challenger(
            version=version,
            actor=None,
            reason=f"Kept as challenger to gather more evidence. {decision.reason}",
            evidence=evidence,
        )
        return OUTCOME_CHALLENGER
    archive_version(version=version, actor=None, reason=decision.reason, evidence=evidence)
    return OUTCOME_ARCHIVED
