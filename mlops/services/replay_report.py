"""The report of a replay: what served each day and how well, every alert, email, retrain,
promotion, rollback and canary decision, and a summary a manager (or a script) reads.

Fixed keys scripts rely on: `summary.max_champion_age_days`, `summary.critical_emails`,
`summary.alerts_by_type`, `summary.incidents` ({segment, change_date, opened_on, resolved_on,
resolution}), `summary.promotions` ({day, segment, version, kind}), `summary.rollouts` ({plan,
version, outcome, started_on, ended_on, decisions: [{kind, step, share, day, on, breaches,
guardrails}]}), `days` ({date, segments: [{segment, champion, champion_age_days, t1: {mae,
bias_pct, interval_coverage}}], rollouts}), and `morning_after` ({date, alerts, emails, retrains,
promotions, rollbacks, approvals}: what the jobs of the morning after the last day did).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

import time_machine
from django.contrib.auth import get_user_model
from django.db.models import Count, F

from alerts.models import MLAlert, NotificationChannel, NotificationDelivery
from alerts.registry import can_approve
from alerts.selectors import OPEN_STATUSES
from alerts.services import act_on_alert
from forecasting.models import Forecast
from mlops.models import (
    BacktestResult,
    DecisionKind,
    DriftIncident,
    ModelRetrainingLog,
    ModelTransition,
    ModelVersion,
    RolloutEvent,
    RolloutPlan,
)
from tenants.selectors import TenantPolicy

if TYPE_CHECKING:
    from mlops.services.replay import ReplayPlan
    from tenants.models import Tenant

REVIEW_ALERTS = (MLAlert.AlertType.PROMOTION_PENDING, MLAlert.AlertType.DRIFT_DETECTED)
PROMOTION_KINDS = (
    DecisionKind.REFRESH,
    DecisionKind.RECIPE_CHANGE,
    DecisionKind.REVIEW,
    DecisionKind.OVERRIDE,
)


class ReplayRecorder:
    """Collects a replay's days as they run, and writes the report at the end."""

    def __init__(self, *, sandbox: Tenant, plan: ReplayPlan) -> None:
        from mlops.services.replay import REPLAY_USER

        self.sandbox, self.plan = sandbox, plan
        self.zone = zoneinfo.ZoneInfo(sandbox.time_zone)
        self.user = get_user_model().objects.get(username=REPLAY_USER)
        self.approvals: list[dict[str, Any]] = []
        self.jobs: dict[dt.date, list[dict[str, Any]]] = defaultdict(list)
        self.days: list[dt.date] = []

    # -- while it runs ------------------------------------------------------------------------

    def job_ran(self, *, day: dt.date, key: str, result: Any) -> None:
        self.jobs[day].append({"job": key})

    def approve_waiting(self, *, day: dt.date) -> None:
        """Approve, as a person would, each review alert recommended for `approve_after_days`."""
        wait = self.plan.approve_after_days
        if wait is None:
            return
        moment = dt.datetime.combine(day, dt.time(9, 0), tzinfo=self.zone)
        for alert in MLAlert.objects.filter(alert_type__in=REVIEW_ALERTS, status__in=OPEN_STATUSES):
            if self._local_day(alert.created_at) > day - dt.timedelta(days=wait):
                continue
            if not can_approve(alert):
                continue
            with time_machine.travel(moment, tick=True):
                act_on_alert(
                    alert=alert,
                    user=self.user,
                    action="approve",
                    note=f"replay_operations --approve-after-days {wait}",
                )
            self.approvals.append(
                {
                    "day": day,
                    "alert_id": alert.pk,
                    "alert_type": alert.alert_type,
                    "version": alert.model_version.version if alert.model_version else None,
                    "segment": alert.model_version.segment if alert.model_version else None,
                    "by": f"--approve-after-days {wait}",
                }
            )

    def close_day(self, day: dt.date) -> None:
        self.days.append(day)

    # -- the report ---------------------------------------------------------------------------

    def _local_day(self, moment: dt.datetime) -> dt.date:
        return moment.astimezone(self.zone).date()

    def _by_day(self, rows, attribute: str = "created_at") -> dict[dt.date, list]:
        grouped: dict[dt.date, list] = defaultdict(list)
        for row in rows:
            grouped[self._local_day(getattr(row, attribute))].append(row)
        return grouped

    def _served(self) -> dict[dt.date, list[ModelVersion]]:
        """The champions whose forecasts were served for each day (latest run made by then); a
        canary's days (from the morning after its start to the morning its plan ended) are the
        rollouts' business."""
        rows = (
            Forecast.objects.filter(served=True, made_on=F("target_date"))
            .values("target_date", "model_version")
            .annotate(n=Count("id"))
        )
        versions = {version.pk: version for version in ModelVersion.objects.all()}
        canaries = list(RolloutPlan.objects.values_list("version_id", "started_on", "ended_on"))
        served: dict[dt.date, list[ModelVersion]] = defaultdict(list)
        for row in rows:
            day, version_id = row["target_date"], row["model_version"]
            if any(
                version_id == canary and started < day and (ended is None or day <= ended)
                for canary, started, ended in canaries
            ):
                continue
            served[day].append(versions[version_id])
        return served

    def _rollouts(self) -> tuple[list[dict[str, Any]], dict[dt.date, list[dict[str, Any]]]]:
        """Each canary plan with its outcome and every decision on it, and the decisions by day:
        a judgement under the day it judged (decided the next morning, `on`), a start or a
        person's move under the day it was taken."""
        plans = RolloutPlan.objects.select_related("version", "champion").order_by("pk")
        events = RolloutEvent.objects.order_by("created_at", "pk")
        by_plan: dict[int, list[RolloutEvent]] = defaultdict(list)
        for event in events:
            by_plan[event.plan_id].append(event)
        summary, by_day = [], defaultdict(list)
        for plan in plans:
            decisions = []
            for event in by_plan[plan.pk]:
                decision = {
                    "plan": plan.pk,
                    "version": plan.version.version,
                    **_rollout_decision(event),
                    "on": self._local_day(event.created_at),
                }
                decisions.append(decision)
                by_day[event.day or decision["on"]].append(decision)
            summary.append(
                {
                    "plan": plan.pk,
                    "version": plan.version.version,
                    "segment": plan.segment,
                    "champion": plan.champion.version if plan.champion_id else None,
                    "shares": plan.shares,
                    "bake_days": plan.bake_days,
                    "started_on": plan.started_on,
                    "outcome": plan.status,
                    "ended_on": plan.ended_on,
                    "step": plan.step + 1,
                    "share": plan.share,
                    "reason": plan.outcome_reason or None,
                    "decisions": decisions,
                }
            )
        return summary, by_day

    def report(self, *, wall_seconds: float) -> dict[str, Any]:
        served = self._served()
        t1 = {
            (row.model_version_id, row.window_end): row
            for row in BacktestResult.objects.filter(kind=BacktestResult.Kind.T_MINUS_1)
        }
        alerts = self._by_day(MLAlert.objects.order_by("created_at"))
        emails = self._by_day(
            NotificationDelivery.objects.filter(
                channel__kind=NotificationChannel.Kind.EMAIL,
                status=NotificationDelivery.Status.SENT,
            ).select_related("alert")
        )
        retrains = self._by_day(ModelRetrainingLog.objects.order_by("created_at"))
        moves = ModelTransition.objects.select_related("model_version").order_by("created_at")
        moves = list(moves)
        rollbacks = self._by_day(
            m
            for m in moves
            if m.to_status == ModelVersion.Status.CHAMPION and "rollback" in (m.evidence or {})
        )
        promotions = self._by_day(
            m
            for m in moves
            if m.to_status == ModelVersion.Status.CHAMPION
            and m.from_status != m.to_status
            and "rollback" not in (m.evidence or {})
        )
        rollouts, rollouts_by_day = self._rollouts()

        def happened(day: dt.date) -> dict[str, Any]:
            return {
                "alerts": [_alert(a) for a in alerts.get(day, [])],
                "emails": len(emails.get(day, [])),
                "retrains": [_retrain(log) for log in retrains.get(day, [])],
                "promotions": [_promotion(move) for move in promotions.get(day, [])],
                "rollbacks": [_promotion(move) for move in rollbacks.get(day, [])],
                "approvals": [a for a in self.approvals if a["day"] == day],
            }

        days = []
        max_age = 0
        for day in self.days:
            segments = _segments(day=day, champions=served.get(day, []), t1=t1)
            max_age = max([max_age, *(each["champion_age_days"] for each in segments)])
            days.append(
                {
                    "date": day,
                    "segments": segments,
                    **happened(day),
                    "rollouts": rollouts_by_day.get(day, []),
                    "jobs": self.jobs.get(day + dt.timedelta(days=1), []),
                }
            )
        # The jobs of the morning after the last day ran too (listed under that day); what they
        # did falls on a day the replay serves no sales of.
        after = self.plan.end + dt.timedelta(days=1)
        morning_after = {"date": after, **happened(after)} if self.days else None
        return _json(
            {
                "tenant": self.plan.source.slug,
                "sandbox": self.sandbox.slug,
                "start": self.plan.start,
                "end": self.plan.end,
                "policy": {name: getattr(self.sandbox, name) for name in TenantPolicy.names()},
                "overrides": self.plan.overrides,
                "approve_after_days": self.plan.approve_after_days,
                "summary": {
                    **self._summary(
                        days=days,
                        morning_after=morning_after,
                        max_age=max_age,
                        wall_seconds=wall_seconds,
                    ),
                    "rollouts": rollouts,
                },
                "days": days,
                "morning_after": morning_after,
            }
        )

    def _summary(
        self,
        *,
        days: list[dict[str, Any]],
        morning_after: dict[str, Any] | None,
        max_age: int,
        wall_seconds: float,
    ) -> dict[str, Any]:
        happenings = [*days, *([morning_after] if morning_after else [])]
        alerts = MLAlert.objects.all()
        critical = NotificationDelivery.objects.filter(
            channel__kind=NotificationChannel.Kind.EMAIL,
            status=NotificationDelivery.Status.SENT,
            alert__severity=MLAlert.Severity.CRITICAL,
        )
        promotions = [
            {**promotion, "day": day["date"]}
            for day in happenings
            for promotion in day["promotions"]
            if promotion["kind"] in PROMOTION_KINDS
        ]
        return {
            "days": len(days),
            "max_champion_age_days": max_age,
            "critical_emails": critical.count(),
            "emails": sum(day["emails"] for day in happenings),
            "alerts_by_type": dict(Counter(alert.alert_type for alert in alerts)),
            "incidents": [
                {
                    "id": incident.pk,
                    "segment": incident.segment,
                    "champion": incident.champion.version,
                    "change_date": incident.change_date,
                    "opened_on": incident.opened_on,
                    "resolved_on": incident.resolved_on,
                    "resolution": incident.resolution or None,
                    "rules": incident.rules,
                }
                for incident in DriftIncident.objects.select_related("champion").order_by("pk")
            ],
            "promotions": [
                {key: promotion[key] for key in ("day", "segment", "version", "kind")}
                for promotion in promotions
            ],
            "retrains_by_kind": dict(
                Counter(log.decision_kind or "failed" for log in ModelRetrainingLog.objects.all())
            ),
            "approvals": len(self.approvals),
            "wall_seconds": round(wall_seconds, 1),
        }


def _segments(
    *, day: dt.date, champions: list[ModelVersion], t1: dict[tuple[int, dt.date], BacktestResult]
) -> list[dict[str, Any]]:
    """Each champion that served `day` (global first): its age and its T-1 numbers."""
    segments = []
    for version in sorted(champions, key=lambda v: (v.segment != "global", v.segment)):
        score = t1.get((version.pk, day))
        segments.append(
            {
                "segment": version.segment,
                "champion": version.version,
                "champion_age_days": (day - dt.timedelta(days=1) - version.training_end).days,
                "t1": {
                    "mae": score.mae if score else None,
                    "wape": score.wape if score else None,
                    "bias_pct": score.bias if score else None,
                    "interval_coverage": score.interval_coverage if score else None,
                    "n_points": score.n_points if score else 0,
                },
            }
        )
    return segments


def _alert(alert: MLAlert) -> dict[str, Any]:
    return {
        "id": alert.pk,
        "type": alert.alert_type,
        "severity": alert.severity,
        "title": alert.title,
        "status": alert.status,
    }


def _retrain(log: ModelRetrainingLog) -> dict[str, Any]:
    decision = log.decision or {}
    return {
        "id": log.pk,
        "segment": log.segment,
        "trigger": log.trigger,
        "status": log.status,
        "kind": log.decision_kind or None,
        "outcome": log.outcome or None,
        "version": log.resulting_version.version if log.resulting_version_id else None,
        "reasons": decision.get("reasons") or ([log.error.splitlines()[0]] if log.error else []),
    }


def _promotion(move: ModelTransition) -> dict[str, Any]:
    return {
        "segment": move.model_version.segment,
        "version": move.model_version.version,
        "kind": (move.evidence or {}).get("kind") or DecisionKind.REVIEW,
        "by": move.actor_label,
        "reason": move.reason[:300],
    }


# The numbers of a guardrail result a manager reads in the report.
GUARDRAIL_KEYS = (
    "metric",
    "scope",
    "canary",
    "champion",
    "worse_by",
    "tolerance",
    "unit",
    "confidence",
    "required_confidence",
    "n_series",
    "breached",
)


def _rollout_decision(event: RolloutEvent) -> dict[str, Any]:
    """One event of a plan's timeline: what was decided at which step, for which judged day,
    with the breached guardrails and every guardrail over all canary series."""
    evidence = event.evidence or {}

    def numbers(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{key: result.get(key) for key in GUARDRAIL_KEYS} for result in results]

    return {
        "kind": event.kind,
        "step": event.step + 1,
        "share": event.share,
        "day": event.day,
        "by": event.actor_label,
        "reason": event.reason[:500],
        "breaches": numbers(evidence.get("breaches", [])),
        "guardrails": numbers(
            [each for each in evidence.get("guardrails", []) if each.get("scope") == "all"]
        ),
    }


def _json(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json(item) for item in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
