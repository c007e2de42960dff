"""Results of open experiments: computed by a worker and stored; requests read what is stored.

Computing them refits both recipes over the evaluation windows when shadow days are few, which
takes minutes: no request may do it (a loop of GETs would tie up every web worker).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from experiments.models import ExperimentResults, ModelExperiment
from experiments.selectors import experiment_results
from tenants.selectors import tenant_policy

# Shadow forecasts get their actuals once a day: results older than this are computed again
# when someone looks at them.
RESULTS_MAX_AGE = dt.timedelta(hours=6)
# While a computation is queued, looking again queues no other (a lost worker's expires).
QUEUED_FOR_SECONDS = 15 * 60

STATE_CURRENT = "current"  # computed for the experiment's versions within RESULTS_MAX_AGE
STATE_STALE = "stale"  # older, or for other versions: shown while a worker recomputes them
STATE_PENDING = "pending"  # never computed yet: a worker is computing them


@dataclass(frozen=True)
class StoredResults:
    """What a request shows of an experiment's results, and whether they need computing."""

    body: dict[str, Any]
    current: bool


def _version_ids(experiment: ModelExperiment) -> list[int]:
    return sorted(experiment.model_versions.values_list("pk", flat=True))


def _queued_key(experiment: ModelExperiment) -> str:
    # With the creation time: ids start again in a re-created database, the cache does not.
    return f"experiment-results-queued:{experiment.pk}:{experiment.created_at.timestamp()}"


def stored_experiment_results(*, experiment: ModelExperiment) -> StoredResults:
    """The results a worker last computed, with `state` and `computed_at`; never computes.

    An experiment with no versions yet has nothing to compare: its (empty) results are current."""
    version_ids = _version_ids(experiment)
    stored = ExperimentResults.objects.filter(experiment=experiment).first()
    if stored is None:
        body = {
            "computed_at": None,
            "success_metric": experiment.success_metric,
            "expected_improvement_pct": experiment.expected_improvement_pct,
            "min_shadow_days": tenant_policy().min_shadow_days,
            "segments": {},
            "overall": None,
        }
        current = not version_ids
        body["state"] = STATE_CURRENT if current else STATE_PENDING
        return StoredResults(body=body, current=current)
    current = stored.version_ids == version_ids and (
        stored.computed_at >= timezone.now() - RESULTS_MAX_AGE
    )
    body = {**stored.results, "computed_at": stored.computed_at.isoformat()}
    body["state"] = STATE_CURRENT if current else STATE_STALE
    return StoredResults(body=body, current=current)


def queue_experiment_results(*, experiment: ModelExperiment) -> bool:
    """Have a worker compute the experiment's results once committed, unless a computation is
    queued already; returns whether one was queued now."""
    if not cache.add(_queued_key(experiment), True, timeout=QUEUED_FOR_SECONDS):
        return False
    from experiments.tasks import compute_experiment_results

    experiment_id = experiment.pk
    transaction.on_commit(lambda: compute_experiment_results.delay(experiment_id))
    return True


def store_experiment_results(*, experiment: ModelExperiment) -> ExperimentResults | None:
    """Compute the experiment's results (selectors.experiment_results) and store them; returns
    the stored row, or None for a completed experiment (its decision keeps the results it was
    made on)."""
    version_ids = _version_ids(experiment)
    try:
        results = experiment_results(experiment=experiment)
    except Exception:
        # A later read may queue it again (it would wait QUEUED_FOR_SECONDS otherwise).
        cache.delete(_queued_key(experiment))
        raise
    with transaction.atomic():
        fresh = ModelExperiment.objects.select_for_update().get(pk=experiment.pk)
        if fresh.status == ModelExperiment.Status.COMPLETED:
            stored = None
        else:
            stored, _ = ExperimentResults.objects.update_or_create(
                experiment=fresh,
                defaults={
                    "results": results,
                    "computed_at": timezone.now(),
                    "version_ids": version_ids,
                },
            )
    cache.delete(_queued_key(experiment))
    return stored
