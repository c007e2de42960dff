"""The daily canary judging (after the T-1 backtest): each running or paused plan is judged once
per day on the days its canary served, then decided once and applied with one call:

- a guardrail breached (see `rollout_guardrails`): automatic rollback, one alert;
- its step baked (`bake_days` judged days served at this step) while running: the next step,
  or, after the last one, promotion through the registry;
- otherwise it holds (baking, or paused), and says how far it is.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from alerts.models import MLAlert
from alerts.services import raise_alert
from mlops.models import ModelVersion, RolloutEvent, RolloutPlan
from mlops.selectors import incumbent_for
from mlops.services.rollout_guardrails import check_guardrails, describe_breach, load_points
from mlops.services.rollouts import finish_with_promotion, move, next_step, record, stop_serving
from tenants.selectors import tenant_policy

logger = logging.getLogger(__name__)

JUDGED_DAYS = 28
Status = RolloutPlan.Status
EventKind = RolloutEvent.Kind


@dataclass(frozen=True)
class CanaryDecision:
    """What a plan's day of evidence decides: rollback, promote, advance or hold, and why."""

    plan_id: int
    day: dt.date
    outcome: str
    reasons: tuple[str, ...]
    evidence: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["day"] = self.day.isoformat()
        data["reasons"] = list(self.reasons)
        return data


def decide_canary(
    *, plan: RolloutPlan, day: dt.date, results: list[dict[str, Any]], baked: int, evidence: dict
) -> CanaryDecision:
    """The decision on one judged day, from the guardrail results and the days baked."""
    breaches = [result for result in results if result["breached"]]
    step = f"step {plan.step + 1} of {len(plan.shares)} ({plan.share:.0%})"
    if breaches:
        outcome = "rollback"
        reasons = tuple(f"Guardrail breached: {describe_breach(each)}." for each in breaches)
    elif plan.status == Status.PAUSED:
        outcome = "hold"
        reasons = (f"Paused at {step}; guardrails hold ({baked} day(s) baked).",)
    elif baked >= plan.bake_days:
        outcome = "promote" if plan.is_last_step else "advance"
        reasons = (
            f"{step.capitalize()} baked {baked} day(s) with every guardrail holding over "
            f"{evidence['series']} series and {evidence['days']} day(s).",
        )
    else:
        outcome = "hold"
        reasons = (f"Baking {step}: {baked} of {plan.bake_days} day(s); guardrails hold.",)
    return CanaryDecision(
        plan_id=plan.pk,
        day=day,
        outcome=outcome,
        reasons=reasons,
        evidence={**evidence, "breaches": breaches, "baked": baked},
    )


def _evidence(plan: RolloutPlan, *, day: dt.date) -> tuple[dict[str, Any], list, bool]:
    """The plan's guardrail results over the days its canary served so far (at most the last
    JUDGED_DAYS), whether the canary served `day`, and the numbers as evidence."""
    champion = incumbent_for(name=plan.name, segment=plan.segment)
    start = max(plan.started_on + dt.timedelta(days=1), day - dt.timedelta(days=JUDGED_DAYS - 1))
    if champion is None or champion.pk == plan.version_id:
        return {"champion": None, "series": 0, "days": 0, "guardrails": []}, [], False
    policy = tenant_policy()
    points = load_points(canary_id=plan.version_id, champion_id=champion.pk, start=start, end=day)
    results = check_guardrails(
        guardrails=plan.guardrails,
        points=points,
        confidence=plan.confidence,
        overstock_tolerance=float(policy.overstock_tolerance),
    )
    evidence = {
        "day": day.isoformat(),
        "champion": champion.version,
        "window": {"start": start.isoformat(), "end": day.isoformat()},
        "days": len(points.days),
        "series": points.n_series,
        "points": int(points.actual.size),
        "confidence": plan.confidence,
        "guardrails": results,
    }
    return evidence, results, day in points.days


def judge_canary(*, plan_id: int, day: dt.date) -> CanaryDecision | None:
    """Judge one plan on T-1 day `day` and apply the decision; None when it is not active, or
    `day` was judged already (each day once, whatever the deliveries) or precedes its start."""
    with transaction.atomic():
        # The plan's row lock orders this against a person's pause, abort or skip.
        plan = RolloutPlan.objects.select_for_update().select_related("version").get(pk=plan_id)
        judged = plan.last_evaluated_on is not None and day <= plan.last_evaluated_on
        if not plan.is_active or judged or day <= plan.started_on:
            return None
        if plan.version.status != ModelVersion.Status.CHALLENGER:
            _end_without_canary(plan, day=day)
            return None
        evidence, results, served = _evidence(plan, day=day)
        baked = plan.days_baked + int(served and day > plan.step_started_on)
        decision = decide_canary(
            plan=plan, day=day, results=results, baked=baked, evidence=evidence
        )
        apply_canary_decision(plan, decision)
        return decision


def apply_canary_decision(plan: RolloutPlan, decision: CanaryDecision) -> None:
    """Apply a decision to the locked plan with its event (and its alert for a rollback)."""
    day, reason, evidence = decision.day, " ".join(decision.reasons), decision.evidence
    today = day + dt.timedelta(days=1)  # the T-1 day is judged the morning after
    latest = {**evidence, "outcome": decision.outcome}
    common = {"actor": None, "reason": reason, "evidence": evidence, "day": day}
    judged = {"last_evaluated_on": day, "latest": latest}
    if decision.outcome == "rollback":
        move(
            plan,
            "roll_back",
            kind=EventKind.ROLLED_BACK,
            **common,
            **judged,
            days_baked=evidence["baked"],
            ended_on=today,
            outcome_reason=reason,
        )
        stop_serving(plan, actor=None, reason=f"Canary rolled back: {reason}"[:300])
        _raise_rollback_alert(plan, decision)
    elif decision.outcome == "promote":
        finish_with_promotion(
            plan,
            kind=EventKind.PROMOTED,
            on=today,
            **common,
            **judged,
            days_baked=evidence["baked"],
        )
    elif decision.outcome == "advance":
        next_step(plan, kind=EventKind.ADVANCED, on=today, **common, **judged)
    else:
        plan.days_baked = evidence["baked"]
        plan.last_evaluated_on = day
        plan.latest = latest
        plan.save(update_fields=["days_baked", "last_evaluated_on", "latest", "updated_at"])
        record(plan, kind=EventKind.JUDGED, from_status=plan.status, **common)


def _raise_rollback_alert(plan: RolloutPlan, decision: CanaryDecision) -> MLAlert:
    breaches = decision.evidence["breaches"]
    first = breaches[0]
    version = plan.version
    return raise_alert(
        alert_type=MLAlert.AlertType.CANARY_ROLLED_BACK,
        severity=MLAlert.Severity.WARNING,
        title=(
            f"Canary of {version.name} {version.version} rolled back: {first['metric']} "
            f"breached on {first['scope']}"
        )[:300],
        message=(
            f"The canary of {version.version} at {plan.share:.0%} of its series was rolled back "
            f"on the judging of {decision.day}: the champion "
            f"{decision.evidence['champion']} serves those series again and {version.version} "
            "waits as a challenger for a person's decision.\n\n" + "\n".join(decision.reasons)
        ),
        metadata={
            "rollout_plan": plan.pk,
            "day": decision.day.isoformat(),
            "step": plan.step,
            "share": plan.share,
            "breaches": breaches,
        },
        dedup_key=f"canary_rolled_back:{plan.pk}",
        model_version=version,
    )


def _end_without_canary(plan: RolloutPlan, *, day: dt.date) -> None:
    """A person decided the version outside the plan (promoted or archived it): the plan ends."""
    status = plan.version.status
    reason = f"{plan.version.version} is {status}: decided outside the canary."
    method = "complete" if status == ModelVersion.Status.CHAMPION else "abort"
    if plan.status == Status.PAUSED and method == "complete":
        method = "abort"
    kind = EventKind.PROMOTED if method == "complete" else EventKind.ABORTED
    move(
        plan,
        method,
        kind=kind,
        actor=None,
        reason=reason,
        day=day,
        ended_on=day + dt.timedelta(days=1),
        outcome_reason=reason,
        last_evaluated_on=day,
    )


def judge_canaries(*, day: dt.date) -> list[CanaryDecision]:
    """`judge_canary` for every running or paused plan, oldest first."""
    decisions = []
    plan_ids = RolloutPlan.objects.filter(status__in=RolloutPlan.ACTIVE).order_by("pk")
    for plan_id in plan_ids.values_list("pk", flat=True):
        try:
            decision = judge_canary(plan_id=plan_id, day=day)
        except Exception:
            # One plan's broken evidence must not stop the others' judging.
            logger.exception("Judging canary plan %s on %s failed", plan_id, day)
            continue
        if decision is not None:
            decisions.append(decision)
    return decisions
