"""The daily judging: every challenger and shadow against the champion serving its series, on
the forecasts the daily forecast job stored for both (the same series and days, each one day
ahead as served), after each T-1 backtest.

- Points: target days after the version's training data ends, up to the scored day, at most
  the last `JUDGING_DAYS`; during a drift incident of its segment (or for the version trained
  for one) only days from the incident's change date on.
- A verdict needs the tenant's `min_shadow_days` of such days (`min_post_change_days` after a
  drift); until then the evaluation says how many there are.
- A recipe change from an automatic retrain that clears the gate on enough days is promoted; one
  that has not cleared it after `GIVE_UP_FACTOR` times that many days is archived. Versions
  that wait for a person (drift, new products, experiments) get their review alert raised,
  rewritten in place or closed as the verdict stands.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from django.db import transaction
from django.utils import timezone

from forecasting import metrics
from forecasting.panel import Panel
from mlops.models import DecisionKind, DriftIncident, ModelVersion, RolloutPlan, Trigger
from mlops.selectors import (
    forecast_matrix,
    get_champion_model,
    incumbent_for,
    latest_forecasts,
    served_forecasts,
)
from mlops.services.data import load_panel
from mlops.services.evaluation import Recipe, record_evaluation, version_summary
from mlops.services.incidents import incident_answered_by, refresh_incident_alert
from mlops.services.lifecycle import archive_version, promote_to_champion
from mlops.services.promotion import PromotionDecision, decide_promotion, promotion_thresholds
from tenants.selectors import TenantPolicy, tenant_policy

logger = logging.getLogger(__name__)

JUDGING_DAYS = 28
GIVE_UP_FACTOR = 4
Status = ModelVersion.Status


@dataclass(frozen=True)
class Judgement:
    """One version's verdict of the day and what it led to."""

    version_id: int
    version: str
    segment: str
    days: int
    required_days: int
    promote: bool
    confidence: float
    mae_improvement_pct: float | None
    action: str  # waiting / promoted / archived / flagged / recorded

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _judged_from(version: ModelVersion, incident: DriftIncident | None) -> dt.date | None:
    days = [version.training_end + dt.timedelta(days=1)] if version.training_end else []
    if incident is not None:
        days.append(incident.change_date)
    return max(days) if days else None


def shadow_decision(
    *,
    version: ModelVersion,
    champion: ModelVersion,
    start: dt.date,
    end: dt.date,
    policy: TenantPolicy,
) -> PromotionDecision:
    """The gate on the version's stored forecasts against the forecasts served for its series
    from `start` to `end` (one day ahead; whichever of `champion` and the champions its
    refreshes replaced served each day), with the tenant's thresholds."""
    history_start = start - dt.timedelta(
        days=max(metrics.ACTIVE_SERIES_DAYS, metrics.SCALE_HISTORY_DAYS)
    )
    panel = load_panel(start=history_start, end=end)
    panel = panel.select(Recipe.of(version).series_mask(panel)) if panel.n_series else panel
    stored = latest_forecasts(version_ids=[version.pk], start=start, end=end)
    first = panel.day_position(start) if panel.n_days else 0
    days = slice(max(first, 0), panel.n_days)
    candidate = forecast_matrix(stored, panel=panel, version_id=version.pk)[:, days]
    served_stored = served_forecasts(start=start, end=end)
    served = forecast_matrix(served_stored, panel=panel)[:, days]
    actual = panel.quantity[:, days].astype(np.float64)
    active = metrics.active_series(panel.until(start).quantity)
    decision = decide_promotion(
        actual=actual,
        candidate_forecast=candidate,
        champion_forecast=served,
        series=np.repeat(np.arange(panel.n_series), actual.shape[1]),
        candidate_coverage=metrics.coverage(
            active=active, forecasted=~np.isnan(candidate).all(axis=1)
        ),
        champion_coverage=metrics.coverage(active=active, forecasted=~np.isnan(served).all(axis=1)),
        **promotion_thresholds(policy),
        history=panel.quantity[:, : days.start][:, -metrics.SCALE_HISTORY_DAYS :],
        candidate_interval=_bounds(stored, panel=panel, days=days, version_id=version.pk),
        champion_interval=_bounds(served_stored, panel=panel, days=days),
    )
    both = ~np.isnan(actual) & ~np.isnan(candidate) & ~np.isnan(served)
    scored = [(panel.dates[days][index]).date() for index in np.flatnonzero(both.any(axis=0))]
    own = get_champion_model(name=version.name, segment=version.segment)
    return dataclasses.replace(
        decision,
        source="shadow",
        replaces_id=own.pk if own else None,
        candidate=version_summary(version, Recipe.of(version)),
        champion=version_summary(champion, Recipe.of(champion)),
        window={
            "kind": "shadow",
            "start": scored[0] if scored else start,
            "end": scored[-1] if scored else end,
            "days": len(scored),
        },
        evaluated_at=timezone.now().isoformat(),
    )


def _bounds(
    stored: pd.DataFrame, *, panel: Panel, days: slice, version_id: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The stored forecasts' 80% interval laid out as the panel's `days`."""
    lower, upper = (
        forecast_matrix(stored, panel=panel, version_id=version_id, column=column)[:, days]
        for column in ("lower", "upper")
    )
    return lower, upper


def _required_days(version: ModelVersion, incident: DriftIncident | None, policy) -> int:
    if incident is not None:
        return int(policy.min_post_change_days)
    return int(policy.min_shadow_days)


def _waits_for_a_person(version: ModelVersion) -> bool:
    """Drift, new-products and experiment versions, and those a person made challenger."""
    if version.decision_kind in (DecisionKind.REVIEW, DecisionKind.OVERRIDE):
        return True
    if version.trigger in (Trigger.DRIFT_DETECTED, Trigger.NEW_PRODUCTS, Trigger.EXPERIMENT):
        return True
    made = version.transitions.filter(to_status=Status.CHALLENGER).first()
    return made is not None and made.actor_id is not None


def judge_version(*, version: ModelVersion, day: dt.date) -> Judgement | None:
    """Judge one waiting version on the stored forecasts up to `day`, keep the verdict on it,
    and act on it; None when no champion serves its series."""
    champion = incumbent_for(name=version.name, segment=version.segment)
    if champion is None or champion.pk == version.pk:
        return None
    policy = tenant_policy()
    incident = incident_answered_by(version)
    start = _judged_from(version, incident) or day
    start = max(start, day - dt.timedelta(days=JUDGING_DAYS - 1))
    required = _required_days(version, incident, policy)
    if start > day:
        decision = None
    else:
        decision = shadow_decision(
            version=version, champion=champion, start=start, end=day, policy=policy
        )
    days = decision.window["days"] if decision else 0
    ready = days >= required
    if decision is None or not ready:
        reason = (
            f"{days} of {required} day(s) of stored forecasts beside {champion.version} so far"
            + (f" (days after the change {incident.change_date})" if incident else "")
            + "; no verdict yet."
        )
        if decision is not None:
            reason += f" So far: {decision.reason}"
    else:
        reason = decision.reason
    evaluation = {
        **(decision.as_evidence() if decision else {"source": "shadow", "promote": False}),
        "kind": version.decision_kind or DecisionKind.RECIPE_CHANGE,
        "ready": ready,
        "promote": bool(decision and decision.promote and ready),
        "required_days": required,
        "judged_on": day,
        "reason": reason,
        "incident_id": incident.pk if incident else None,
    }
    record_evaluation(version=version, evaluation=evaluation)
    evaluation = version.last_evaluation  # as stored: JSON-ready
    action = _act(version=version, evaluation=evaluation, decision=decision, incident=incident)
    return Judgement(
        version_id=version.pk,
        version=version.version,
        segment=version.segment,
        days=days,
        required_days=required,
        promote=evaluation["promote"],
        confidence=float((evaluation.get("test") or {}).get("confidence") or 0.0),
        mae_improvement_pct=(evaluation.get("improvement") or {}).get("mae_pct"),
        action=action,
    )


@transaction.atomic
def _act(
    *,
    version: ModelVersion,
    evaluation: dict[str, Any],
    decision: PromotionDecision | None,
    incident: DriftIncident | None,
) -> str:
    from mlops.services.review import flag_for_review

    if _waits_for_a_person(version):
        if version.trigger == Trigger.EXPERIMENT:
            return "recorded"  # the experiment's own decision reads the verdict
        if incident is not None and incident.status == DriftIncident.Status.OPEN:
            refresh_incident_alert(incident=incident, next_step=_incident_step(version, evaluation))
        flagged = flag_for_review(version=version, because=_because(version, incident))
        return "flagged" if flagged is not None else "waiting"
    if evaluation["promote"]:
        promote_to_champion(
            version=version,
            actor=None,
            reason=f"Cleared the gate on the daily judging. {evaluation['reason']}",
            evidence={**evaluation, "kind": DecisionKind.RECIPE_CHANGE},
            decision=decision,
        )
        ModelVersion.objects.filter(pk=version.pk).update(waiting_for="")
        return "promoted"
    given_up = evaluation["required_days"] * GIVE_UP_FACTOR
    judged_on = dt.date.fromisoformat(evaluation["judged_on"])
    waited = (judged_on - (version.training_end or judged_on)).days
    if evaluation["ready"] and waited >= given_up:
        archive_version(
            version=version,
            actor=None,
            reason=f"Did not clear the gate in {waited} days of daily judging. "
            f"{evaluation['reason']}",
            evidence=evaluation,
        )
        return "archived"
    return "waiting"


def _because(version: ModelVersion, incident: DriftIncident | None) -> str:
    if incident is not None:
        return f"retrained for drift incident #{incident.pk}"
    return f"retrained after {version.get_trigger_display().lower()}"


def _incident_step(version: ModelVersion, evaluation: dict[str, Any]) -> str:
    improvement = (evaluation.get("improvement") or {}).get("mae_pct")
    confidence = (evaluation.get("test") or {}).get("confidence") or 0.0
    days = (evaluation.get("window") or {}).get("days", 0)
    if not evaluation["ready"]:
        return (
            f"{version.version} is judged every day on the days after the change: "
            f"{days} of {evaluation['required_days']} day(s) so far, no verdict yet."
        )
    compared = (
        f"on {days} day(s) after the change, {version.version}'s MAE is "
        f"{metrics.better_or_worse(improvement)} than the drifted champion's (confidence "
        f"{confidence:.3f})"
    )
    if evaluation["promote"]:
        return f"Recommendation: promote {version.version}: {compared}. Approve to promote it."
    return (
        f"Recommendation: keep the champion. {version.version} does not beat it: {compared}. "
        "The weekly refresh keeps training the champion's recipe on the new sales; acknowledge "
        "this alert, or dismiss it to accept the new level as normal."
    )


def judge_waiting_versions(*, day: dt.date) -> list[Judgement]:
    """`judge_version` for every challenger and shadow, oldest first (a canary under a rollout
    plan is the plan's to judge)."""
    versions = (
        ModelVersion.objects.filter(status__in=(Status.CHALLENGER, Status.SHADOW))
        # A canary under a running or paused rollout plan is judged by its plan's guardrails.
        .exclude(rollouts__status__in=RolloutPlan.ACTIVE)
        .order_by("version_number")
    )
    judged = []
    for version in versions:
        try:
            result = judge_version(version=version, day=day)
        except Exception:
            # One version's broken evidence must not stop the others' verdicts.
            logger.exception("Judging %s on %s failed", version, day)
            continue
        if result is not None:
            judged.append(result)
    return judged
