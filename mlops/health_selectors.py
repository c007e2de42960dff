"""Model health: each segment's champion and waiting versions, their recent error and status."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import connection

from mlops.models import (
    DEFAULT_MODEL_NAME,
    GLOBAL_SEGMENT,
    BacktestResult,
    DriftIncident,
    ModelVersion,
)
from mlops.rollout_selectors import active_rollouts
from mlops.services.drift_text import incident_headline
from tenants.selectors import tenant_policy

Status = ModelVersion.Status
# mae_7d against mae_30d: a move of less than this share is "stable".
TREND_BAND = 0.03

# The longest span model health reads: mae_30d.
HEALTH_DAYS = 30


RETAIL_FIELDS = ("fva_pct", "mase", "rmsse", "wql", "tracking_signal")


@dataclass(frozen=True)
class RecentErrors:
    """A version's T-1 results in the HEALTH_DAYS up to its latest one, oldest first: (day,
    mae, n_points, the retail pack by name)."""

    days: list[tuple[dt.date, float | None, int, dict[str, float | None]]]

    @property
    def as_of(self) -> dt.date | None:
        return self.days[-1][0] if self.days else None

    def _since(self, days: int) -> list[tuple[dt.date, float | None, int, dict]]:
        if self.as_of is None:
            return []
        since = self.as_of - dt.timedelta(days=days)
        return [row for row in self.days if row[0] > since and row[2]]

    def mae(self, *, days: int) -> float | None:
        """Point-weighted MAE of the `days` up to the latest result."""
        rows = [(mae, n) for _, mae, n, _ in self._since(days) if mae is not None]
        points = sum(n for _, n in rows)
        return sum(mae * n for mae, n in rows) / points if points else None

    def retail_7d(self) -> dict[str, float | None]:
        """The retail pack of the week up to the latest result: FVA, MASE, RMSSE and wQL as
        point-weighted means of the days, and the latest day's tracking signal (each day's
        already runs over the week up to it)."""
        rows = self._since(7)

        def weighted(name: str) -> float | None:
            known = [(pack[name], n) for _, _, n, pack in rows if pack[name] is not None]
            points = sum(n for _, n in known)
            return sum(value * n for value, n in known) / points if points else None

        latest = rows[-1][3] if rows and rows[-1][0] == self.as_of else {}
        return {
            **{f"{name}_7d": weighted(name) for name in ("fva_pct", "mase", "rmsse", "wql")},
            "tracking_signal_7d": latest.get("tracking_signal"),
        }


def _recent_errors(version_ids: list[int]) -> dict[int, RecentErrors]:
    """Each version's recent T-1 results, all versions in one query."""
    found: dict[int, list] = {pk: [] for pk in version_ids}
    if not version_ids:
        return {}
    table = BacktestResult._meta.db_table
    retail = ", ".join(f"r.{name}" for name in RETAIL_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT r.model_version_id, r.window_end, r.mae, r.n_points, {retail}
            FROM (
                SELECT model_version_id, MAX(window_end) AS as_of FROM {table}
                WHERE kind = %(kind)s AND model_version_id = ANY(%(versions)s)
                GROUP BY model_version_id
            ) latest
            JOIN {table} r ON r.model_version_id = latest.model_version_id
              AND r.kind = %(kind)s
              AND r.window_end > latest.as_of - %(days)s AND r.window_end <= latest.as_of
            ORDER BY r.model_version_id, r.window_end, r.id
            """,
            {"kind": BacktestResult.Kind.T_MINUS_1, "versions": version_ids, "days": HEALTH_DAYS},
        )
        for pk, day, mae, n_points, *pack in cursor.fetchall():
            found[pk].append((day, mae, n_points, dict(zip(RETAIL_FIELDS, pack, strict=True))))
    return {pk: RecentErrors(days=days) for pk, days in found.items()}


def baseline_mae(version: ModelVersion) -> float | None:
    """The error the version was promoted on: its side of the last evaluation, else its
    training metrics."""
    evaluated = (version.last_evaluation or {}).get("candidate_metrics") or {}
    return evaluated.get("mae") or (version.metrics or {}).get("mae")


def _trend(mae_7d: float | None, mae_30d: float | None) -> str | None:
    if mae_7d is None or mae_30d is None or mae_30d <= 0:
        return None
    if mae_7d < mae_30d * (1 - TREND_BAND):
        return "improving"
    if mae_7d > mae_30d * (1 + TREND_BAND):
        return "degrading"
    return "stable"


def _champion_status(
    mae_7d: float | None, baseline: float | None, *, incident: DriftIncident | None
) -> str:
    """drifting while a drift incident of the champion is open (the alerts' own word); else
    degraded when its recent MAE is worse than its baseline by over half the drift threshold,
    healthy below that; unknown without recent T-1 results or a baseline."""
    if incident is not None:
        return "drifting"
    if mae_7d is None or not baseline:
        return "unknown"
    threshold = float(tenant_policy().drift_threshold_pct)
    worse_pct = (mae_7d / baseline - 1.0) * 100.0
    return "degraded" if worse_pct > threshold / 2 else "healthy"


def _challenger_status(version: ModelVersion) -> str:
    if version.routing_mode == ModelVersion.RoutingMode.CANARY:
        return "canary"
    if version.routing_mode == ModelVersion.RoutingMode.SHADOW:
        return "shadow_testing"
    return "waiting_for_review"


def _incident_data(incident: DriftIncident | None) -> dict[str, Any] | None:
    """The open incident, with what its last check saw. The drift rules follow the champion's
    lineage (its refreshes continue it) against the baseline the lineage began with, so a
    refreshed champion's own MAE and baseline can look healthy while its incident is open."""
    if incident is None:
        return None
    numbers = incident.latest or incident.detection
    return {
        "id": incident.pk,
        "change_date": incident.change_date,
        "opened_on": incident.opened_on,
        "rules": incident.rules,
        "alert_id": incident.alert_id,
        "challenger": incident.challenger.version if incident.challenger_id else None,
        "as_of": numbers.get("as_of"),
        "headline": incident_headline(numbers),
        "recent_mae": numbers.get("recent_mae"),
        "baseline_mae": numbers.get("baseline_mae"),
    }


def _champion_health(
    version: ModelVersion, *, recent: RecentErrors, incident: DriftIncident | None
) -> dict[str, Any]:
    as_of = recent.as_of
    mae_7d = recent.mae(days=7)
    mae_30d = recent.mae(days=HEALTH_DAYS)
    baseline = baseline_mae(version)
    return {
        "id": version.pk,
        "version": version.version,
        "algorithm": version.algorithm,
        "status": _champion_status(mae_7d, baseline, incident=incident),
        "mae_7d": mae_7d,
        "mae_30d": mae_30d,
        **recent.retail_7d(),
        "baseline_mae": baseline,
        "trend": _trend(mae_7d, mae_30d),
        "as_of": as_of,
        "promoted_at": version.promoted_at,
        "decision_kind": version.decision_kind or None,
        "age_days": (as_of - version.training_end).days if as_of and version.training_end else None,
        "incident": _incident_data(incident),
    }


def _challenger_health(version: ModelVersion, *, recent: RecentErrors) -> dict[str, Any]:
    """A waiting version's standing as of the daily judging: its recent error, and whether
    the latest verdict (on the stored forecasts beside the champion) says promote."""
    evaluation = version.last_evaluation or {}
    return {
        "id": version.pk,
        "version": version.version,
        "algorithm": version.algorithm,
        "status": _challenger_status(version),
        "mae_7d": recent.mae(days=7),
        **recent.retail_7d(),
        "promotion_eligible": bool(evaluation.get("promote", False))
        and evaluation.get("ready", True) is not False,
        "confidence": (evaluation.get("test") or {}).get("confidence"),
        "evaluation_reason": evaluation.get("reason"),
        "evaluated_at": evaluation.get("evaluated_at"),
        "evidence_source": evaluation.get("source"),
        "evidence_days": (evaluation.get("window") or {}).get("days"),
        "decision_kind": version.decision_kind or None,
        "waiting_for": version.waiting_for or None,
        "canary_weight": version.canary_weight,
    }


def model_health(*, name: str = DEFAULT_MODEL_NAME) -> list[dict[str, Any]]:
    """One entry per segment of `name` with a champion or a waiting version: the champion's
    recent error, trend, status (drifting while its drift incident is open), and each waiting
    challenger or shadow side by side, newest first (`challenger` is the newest; the GET
    /models/health shape)."""
    active = list(
        ModelVersion.objects.filter(
            name=name, status__in=[Status.CHAMPION, Status.CHALLENGER, Status.SHADOW]
        ).order_by("-version_number")
    )
    recent = _recent_errors([version.pk for version in active])
    incidents = {
        incident.segment: incident
        for incident in DriftIncident.objects.filter(
            name=name, status=DriftIncident.Status.OPEN
        ).select_related("challenger")
    }
    canaries = active_rollouts(name=name)
    segments: dict[str, dict[str, Any]] = {}
    for version in active:
        slot = segments.setdefault(version.segment, {"champion": None, "waiting": []})
        if version.status == Status.CHAMPION:
            slot["champion"] = version
        else:
            slot["waiting"].append(version)
    health = []
    for segment in sorted(segments, key=lambda each: (each != GLOBAL_SEGMENT, each)):
        champion, waiting = segments[segment]["champion"], segments[segment]["waiting"]
        incident = incidents.get(segment)
        if champion is not None and incident is not None and incident.champion_id != champion.pk:
            incident = None
        challengers = [
            _challenger_health(version, recent=recent[version.pk]) for version in waiting
        ]
        health.append(
            {
                "name": name,
                "segment": segment,
                "champion": (
                    _champion_health(champion, recent=recent[champion.pk], incident=incident)
                    if champion
                    else None
                ),
                "challenger": challengers[0] if challengers else None,
                "challengers": challengers,
                "canary": canaries.get(segment),
            }
        )
    return health
