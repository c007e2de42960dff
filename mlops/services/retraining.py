"""Retraining: log it, train the recipe on its window, register the result, decide, apply.

The path of one retrain reads top to bottom: `run_queued_retrain` (a worker's entry) ->
`retrain_forecast_model` -> resolve the recipe -> train -> keep the artifact -> decide once
(`mlops.services.decisions.decide_retrain`) -> register and apply the decision in one
transaction -> tell people what needs them (`mlops.services.review.notify_retrain_outcome`).
"""

from __future__ import annotations

import datetime as dt
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from django.db import transaction
from django.utils import timezone

from forecasting import artifacts
from forecasting.families import ForecastModel, build_model
from forecasting.importance import fit_measuring_importance
from mlops.models import (
    DEFAULT_MODEL_NAME,
    GLOBAL_SEGMENT,
    ModelRetrainingLog,
    ModelVersion,
    Trigger,
)
from mlops.selectors import incumbent_for
from mlops.services.data import DEFAULT_WINDOW_DAYS, latest_sales_day, load_panel, window_days_of
from mlops.services.decisions import RetrainDecision, apply_retrain_decision, decide_retrain
from mlops.services.evaluation import DEFAULT_EVALUATION_WINDOWS, Recipe
from mlops.services.lifecycle import require_permission
from mlops.services.refresh import MIN_CHECK_DAYS
from mlops.services.registry import register_model_version, store_artifact
from tenants.selectors import tenant_policy

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from forecasting.panel import Panel

logger = logging.getLogger(__name__)

DEFAULT_ALGORITHM = "xgboost"
# A queued or running retrain of the same model newer than this absorbs a new request.
DUPLICATE_REQUEST_WINDOW = dt.timedelta(hours=6)
LogStatus = ModelRetrainingLog.Status


@transaction.atomic
def queue_retrain(
    *,
    trigger: str,
    name: str = DEFAULT_MODEL_NAME,
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
            status__in=ModelRetrainingLog.PENDING,
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


def champions_due_for_refresh(*, next_run_in_days: int = 0) -> list[ModelVersion]:
    """Champions whose training data ends at least the tenant's retrain period before the
    latest sales day, or would end more than the period before it by the job's next run
    (`next_run_in_days` away) once they have served the days a refresh is judged on: a
    champion promoted mid-week is refreshed on the first Sunday it can be, rather than serve
    on data up to two weeks old."""
    latest = latest_sales_day()
    period = tenant_policy().retrain_period_days
    champions = ModelVersion.objects.filter(status=ModelVersion.Status.CHAMPION).order_by(
        "name", "segment"
    )

    def due(champion: ModelVersion) -> bool:
        if latest is None or champion.training_end is None:
            return True
        age = (latest - champion.training_end).days
        return age >= period or (age + next_run_in_days > period and age >= MIN_CHECK_DAYS)

    return [champion for champion in champions if due(champion)]


def queue_scheduled_retrains(*, next_run_in_days: int = 0) -> list[ModelRetrainingLog]:
    """Queue a scheduled retrain (a refresh of its recipe) of every champion that is due (see
    `champions_due_for_refresh`); returns the logs."""
    return [
        queue_retrain(trigger=Trigger.SCHEDULED, name=champion.name, segment=champion.segment)
        for champion in champions_due_for_refresh(next_run_in_days=next_run_in_days)
    ]


def resolve_recipe(
    *,
    log: ModelRetrainingLog,
    incumbent: ModelVersion | None,
    algorithm: str | None = None,
    hyperparameters: dict[str, Any] | None = None,
    window_days: int | None = None,
) -> Recipe:
    """The recipe to train: what was asked, else the recipe of the champion serving the segment
    (a refresh; after drift too: measured on generated shifts, neither a shorter window nor
    recency weights beat the champion's own recipe refit on the freshest days, see
    bench/drift_adaptation.py), else the default."""
    algorithm = algorithm or log.algorithm or (incumbent.algorithm if incumbent else None)
    algorithm = algorithm or DEFAULT_ALGORITHM
    if hyperparameters is None:
        hyperparameters = log.hyperparameters or None
    same_family = incumbent is not None and incumbent.algorithm == algorithm
    if hyperparameters is None and same_family:
        hyperparameters = dict(incumbent.hyperparameters)
    if not (window_days or log.window_days) and same_family:
        window_days = window_days_of(incumbent)
    return Recipe(
        algorithm=algorithm,
        hyperparameters=dict(hyperparameters or {}),
        window_days=int(window_days or log.window_days or DEFAULT_WINDOW_DAYS),
        segment=log.segment,
    )


def _fail(log: ModelRetrainingLog, error: BaseException) -> ModelRetrainingLog:
    log.fail()
    log.finished_at = timezone.now()
    detail = "".join(traceback.format_exception(error)[-8:])
    log.error = f"{type(error).__name__}: {error}\n\n{detail}"[:10_000]
    log.save()
    logger.error("Retrain %s of %s/%s failed: %s", log.pk, log.name, log.segment, error)
    return log


@dataclass(frozen=True)
class Trained:
    """What training produced: the fitted model, its artifact, and the data around it."""

    model: ForecastModel
    artifact: artifacts.Artifact
    panel: Panel
    start: dt.date
    end: dt.date
    rows: int
    importance: dict[str, Any]


def _train(
    *, log: ModelRetrainingLog, recipe: Recipe, incumbent: ModelVersion | None, windows: int
) -> Trained:
    """Load enough sales to train the recipe and to judge it, fit it (measuring its feature
    importance on the way), serialise it."""
    end = latest_sales_day()
    if end is None:
        raise ValueError("There are no sales to train on.")
    longest = max(recipe.window_days, window_days_of(incumbent) if incumbent else 0)
    start = end - dt.timedelta(days=longest + windows * 7 - 1)
    # Every series, not only the segment's: a segment candidate is judged against the global
    # champion, whose recipe refits on all of them.
    panel = load_panel(start=start, end=end)
    first_day = end - dt.timedelta(days=recipe.window_days - 1)
    training = panel.select(recipe.series_mask(panel)).window(first_day, end)
    if training.n_series == 0 or training.n_days == 0:
        raise ValueError(f"There are no sales of {recipe.segment} from {first_day} to {end}.")
    log.rows = int(np.count_nonzero(~np.isnan(training.quantity)))
    log.data_start, log.data_end = training.first_day.date(), training.last_day.date()
    log.save()
    model = build_model(recipe.algorithm, **recipe.hyperparameters)
    importance = fit_measuring_importance(model, training)
    return Trained(
        model=model,
        artifact=artifacts.serialize(model),
        panel=panel,
        start=log.data_start,
        end=log.data_end,
        rows=log.rows,
        importance=importance,
    )


def _start(log: ModelRetrainingLog, recipe: Recipe) -> None:
    log.start()
    log.started_at = timezone.now()
    log.finished_at = None
    log.error = ""
    log.attempts += 1
    log.algorithm, log.hyperparameters = recipe.algorithm, recipe.hyperparameters
    log.window_days = recipe.window_days
    log.save()


@transaction.atomic
def _register_and_apply(
    *,
    log: ModelRetrainingLog,
    recipe: Recipe,
    trained: Trained,
    incumbent: ModelVersion | None,
    decision: RetrainDecision,
) -> ModelRetrainingLog:
    version = register_model_version(
        name=log.name,
        segment=log.segment,
        algorithm=recipe.algorithm,
        artifact=trained.artifact,
        metrics=decision.metrics,
        importance=trained.importance,
        trigger=log.trigger,
        parent=incumbent,
        created_by=log.requested_by,
        training_start=trained.start,
        training_end=trained.end,
        training_rows=trained.rows,
        window_days=recipe.window_days,
    )
    applied = apply_retrain_decision(version=version, decision=decision)
    log.outcome = applied.outcome
    log.decision_kind = applied.kind
    log.decision = applied.as_record()
    log.resulting_version = version
    log.succeed()
    log.finished_at = timezone.now()
    log.save()
    return log


def retrain_forecast_model(
    *,
    trigger: str,
    name: str = DEFAULT_MODEL_NAME,
    segment: str = GLOBAL_SEGMENT,
    algorithm: str | None = None,
    hyperparameters: dict[str, Any] | None = None,
    window_days: int | None = None,
    trigger_metadata: dict[str, Any] | None = None,
    requested_by: AbstractBaseUser | None = None,
    log: ModelRetrainingLog | None = None,
    evaluation_windows: int = DEFAULT_EVALUATION_WINDOWS,
    decide: Callable[..., RetrainDecision] = decide_retrain,
) -> ModelRetrainingLog:
    """Train `name`/`segment` on its recipe's window of sales, register the result and decide
    it once: a refresh replaces the champion unless it is worse, a recipe change must clear
    the gate, and drift, new-products and experiment retrains wait as challenger for a person.
    `decide` (the arguments of `decide_retrain`) is for a replay's start, which sets up the
    source's champions as they serve there. Returns the log, whose `status`, `outcome`,
    `decision`, `error` and `resulting_version` say what happened; never raises for a failed
    retrain (the log records it, keeping any trained artifact)."""
    if log is None:
        log = ModelRetrainingLog.objects.create(
            name=name,
            segment=segment,
            trigger=trigger,
            trigger_metadata=trigger_metadata or {},
            requested_by=requested_by,
        )
    incumbent = incumbent_for(name=log.name, segment=log.segment)
    recipe = resolve_recipe(
        log=log,
        incumbent=incumbent,
        algorithm=algorithm,
        hyperparameters=hyperparameters,
        window_days=window_days,
    )
    # Each step commits on its own: the log says what is going on while the work runs, and
    # what training produced survives whatever fails after it.
    _start(log, recipe)
    try:
        trained = _train(log=log, recipe=recipe, incumbent=incumbent, windows=evaluation_windows)
    except Exception as error:
        return _fail(log, error)
    log.artifact.name = store_artifact(
        name=log.name, segment=log.segment, artifact=trained.artifact
    )
    log.artifact_sha256 = trained.artifact.sha256
    log.save()
    try:
        decision = decide(
            log=log,
            recipe=recipe,
            model=trained.model,
            panel=trained.panel,
            windows=evaluation_windows,
        )
        return _register_and_apply(
            log=log, recipe=recipe, trained=trained, incumbent=incumbent, decision=decision
        )
    except Exception as error:
        log.refresh_from_db()
        return _fail(log, error)


def record_interrupted_attempt(log: ModelRetrainingLog) -> None:
    interrupted = log.trigger_metadata.setdefault("interrupted_attempts", [])
    interrupted.append(
        {
            "attempt": log.attempts,
            "started_at": log.started_at.isoformat() if log.started_at else None,
            "noticed_at": timezone.now().isoformat(),
            "reason": "the worker running it stopped before it finished",
        }
    )
    log.save(update_fields=["trigger_metadata"])


@dataclass(frozen=True)
class QueuedRetrainResult:
    """What a worker did with a queued retrain."""

    log: ModelRetrainingLog | None
    busy: bool = False  # another retrain of the model holds its lock: try again later

    def as_dict(self) -> dict[str, Any]:
        if self.log is None:
            return {"busy": self.busy}
        return {
            "log": self.log.pk,
            "status": self.log.status,
            "outcome": self.log.outcome,
            "version": self.log.resulting_version_id,
        }


def run_queued_retrain(*, log_id: int) -> QueuedRetrainResult:
    """Run the queued retrain `log_id` once, whatever the deliveries: a finished one is left as
    it is, one whose worker died is recorded as interrupted and run again; returns what
    happened, or `busy` while another retrain of the model runs in this tenant."""
    from mlops.locks import model_lock
    from mlops.services.review import notify_retrain_outcome

    log = ModelRetrainingLog.objects.select_related("requested_by").get(pk=log_id)
    with model_lock(log.name) as acquired:
        if not acquired:
            return QueuedRetrainResult(log=None, busy=True)
        log.refresh_from_db()
        if log.status in ModelRetrainingLog.FINISHED:
            return QueuedRetrainResult(log=log)
        if log.status == LogStatus.RUNNING:
            # Running, yet nobody holds the lock: the attempt's worker died.
            record_interrupted_attempt(log)
        log = retrain_forecast_model(trigger=log.trigger, log=log)
    notify_retrain_outcome(log=log)
    return QueuedRetrainResult(log=log)
