"""Reads of canary rollouts: a plan's standing, its timeline, and the canary block of health."""

from __future__ import annotations

from typing import Any

from django.db.models import Count

from mlops.models import ModelVersion, RolloutPlan

# What a person may do in each state (the API's and the admin's buttons).
ACTIONS_BY_STATUS = {
    RolloutPlan.Status.RUNNING: ["pause", "skip", "abort"],
    RolloutPlan.Status.PAUSED: ["resume", "abort"],
}


def latest_rollout(version: ModelVersion) -> RolloutPlan | None:
    """The version's newest rollout plan, or None."""
    return version.rollouts.select_related("version", "champion", "created_by").first()


def canary_series_by_department(*, plan: RolloutPlan) -> dict[str, int]:
    """How many canary series the plan holds in each department, departments sorted (its start
    evidence, the API, the admin)."""
    rows = plan.series.values("department").annotate(n=Count("pk")).order_by("department")
    return {row["department"]: row["n"] for row in rows}


def rollout_summary(plan: RolloutPlan) -> dict[str, Any]:
    """Where a plan stands today: its step, share, bake, and the last judgement's guardrails
    over all canary series (each value against the champion's and its tolerance)."""
    latest = plan.latest or {}
    overall = [each for each in latest.get("guardrails", []) if each.get("scope") == "all"]
    return {
        "id": plan.pk,
        "version": plan.version.version,
        "segment": plan.segment,
        "status": plan.status,
        "step": plan.step + 1,
        "steps": len(plan.shares),
        "share": plan.share,
        "shares": plan.shares,
        "bake_days": plan.bake_days,
        "days_baked": plan.days_baked,
        "started_on": plan.started_on,
        "last_evaluated_on": plan.last_evaluated_on,
        "last_outcome": latest.get("outcome"),
        "guardrail_values": overall,
        "breaches": latest.get("breaches", []),
    }


def rollout_detail(plan: RolloutPlan) -> dict[str, Any]:
    """The plan in full: its summary, settings, canary series per department, what a person
    may do now, and its timeline (every move and daily judgement, oldest first)."""
    events = plan.events.select_related("actor").order_by("created_at", "pk")
    return {
        **rollout_summary(plan),
        "name": plan.name,
        "champion": plan.champion.version if plan.champion_id else None,
        "guardrails": plan.guardrails,
        "confidence": plan.confidence,
        "step_started_on": plan.step_started_on,
        "ended_on": plan.ended_on,
        "outcome_reason": plan.outcome_reason,
        "created_by": plan.created_by.get_username() if plan.created_by_id else None,
        "series": canary_series_by_department(plan=plan),
        "allowed_actions": ACTIONS_BY_STATUS.get(plan.status, []),
        "timeline": [
            {
                "kind": event.kind,
                "from_status": event.from_status,
                "to_status": event.to_status,
                "step": event.step + 1,
                "share": event.share,
                "day": event.day,
                "actor": event.actor_label,
                "reason": event.reason,
                "evidence": event.evidence,
                "created_at": event.created_at,
            }
            for event in events
        ],
    }


def active_rollouts(*, name: str) -> dict[str, dict[str, Any]]:
    """The running or paused plan of each segment of `name`, summarised (health's `canary`)."""
    plans = RolloutPlan.objects.filter(name=name, status__in=RolloutPlan.ACTIVE).select_related(
        "version"
    )
    return {plan.segment: rollout_summary(plan) for plan in plans}
