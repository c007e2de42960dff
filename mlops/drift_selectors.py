"""Reads of a drift incident: its champion's daily T-1 numbers and the CUSUMs replayed over them
as the daily check read them, for the incident's page."""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass, field

from mlops.models import DriftIncident, ModelVersion
from mlops.services.cusum import DEFAULT_THRESHOLD_PCT, REFERENCE_DAYS, rule_inputs
from mlops.services.drift import LOOKBACK_DAYS, Watched
from tenants.selectors import tenant_policy

# The days the incident's charts span at most: the check's lookback and a reference before it.
CHART_DAYS = LOOKBACK_DAYS + REFERENCE_DAYS


@dataclass(frozen=True)
class DriftDay:
    """One T-1 day of the watched champion: its numbers and, on monitored days, the CUSUMs."""

    day: dt.date
    version: str
    mae: float | None
    bias_pct: float | None
    n_points: int
    reference: bool  # one of the first scored days that set the in-control level
    error_cusum: float | None = None
    bias_up: float | None = None  # under-forecasting more than in the reference days
    bias_down: float | None = None  # over-forecasting more


@dataclass(frozen=True)
class IncidentTimeline:
    """What the incident's charts draw: every day from its reference to the last check."""

    as_of: dt.date
    reference_start: dt.date | None = None
    reference_end: dt.date | None = None
    days: list[DriftDay] = field(default_factory=list)
    error_threshold: float | None = None
    bias_threshold: float | None = None
    baseline_mae: float | None = None
    threshold_pct: float = DEFAULT_THRESHOLD_PCT
    reference_bias_pct: float | None = None

    @property
    def monitored(self) -> list[DriftDay]:
        return [day for day in self.days if not day.reference]

    @property
    def threshold_mae(self) -> float | None:
        """The MAE over which the threshold rule fires."""
        if self.baseline_mae is None:
            return None
        return self.baseline_mae * (1.0 + self.threshold_pct / 100.0)


def incident_as_of(incident: DriftIncident) -> dt.date:
    """The last day the incident's champion was checked."""
    return incident.last_checked_on or incident.opened_on


def incident_timeline(incident: DriftIncident) -> IncidentTimeline:
    """The incident's champion (with the refreshes it carried on through) as the daily check
    read it on its last day: the reference days, the monitored days and both CUSUMs on each,
    against their thresholds (a re-baselining made by closing this incident is ignored)."""
    as_of = incident_as_of(incident)
    watched = Watched.of(incident.champion, before=incident.opened_on)
    reference, monitored = watched.reference_and_monitored(as_of=as_of)
    numbers = incident.detection or {}
    threshold_pct = float(numbers.get("threshold_pct") or tenant_policy().drift_threshold_pct)
    inputs = rule_inputs(reference=reference, monitored=monitored, threshold_pct=threshold_pct)
    error = inputs["error_cusum"].path() if "error_cusum" in inputs else None
    bias = inputs["bias_cusum"].path() if "bias_cusum" in inputs else None
    labels = dict(
        ModelVersion.objects.filter(pk__in=[v.pk for v in watched.chain]).values_list(
            "pk", "version"
        )
    )

    def day_of(row, *, index: int | None) -> DriftDay:
        return DriftDay(
            day=row.window_end,
            version=labels.get(row.model_version_id, ""),
            mae=row.mae,
            bias_pct=row.bias,
            n_points=row.n_points,
            reference=index is None,
            error_cusum=error.up[index] if error and index is not None else None,
            bias_up=bias.up[index] if bias and index is not None else None,
            bias_down=bias.down[index] if bias and bias.down and index is not None else None,
        )

    biases = [row.bias for row in reference if row.bias is not None]
    # An old champion's reference lies months back: the charts show the days near the drift.
    shown_from = as_of - dt.timedelta(days=CHART_DAYS - 1)
    return IncidentTimeline(
        as_of=as_of,
        reference_start=reference[0].window_end if reference else None,
        reference_end=reference[-1].window_end if reference else None,
        days=[day_of(row, index=None) for row in reference if row.window_end >= shown_from]
        + [day_of(row, index=index) for index, row in enumerate(monitored)],
        error_threshold=error.threshold if error else None,
        bias_threshold=bias.threshold if bias else None,
        baseline_mae=numbers.get("baseline_mae"),
        threshold_pct=threshold_pct,
        reference_bias_pct=statistics.median(biases) if biases else None,
    )
