"""The decision on a retrain's result, computed once as a value and applied with one call.

Three kinds (DESIGN.md, "Decisions over time"):
- refresh: the champion's own recipe on fresher data replaces it unless it is worse
  (`mlops.services.refresh`);
- recipe change: another algorithm, settings, window or segment must clear the fair gate
  (`mlops.services.evaluation`); one that is better on both errors but not yet by enough waits
  as challenger and is judged every day on stored forecasts (`mlops.services.judging`);
- review: drift, new-products and experiment retrains wait as challenger for a person, with the
  system's recommendation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import transaction

from mlops.models import (
    REVIEWED_TRIGGERS,
    DecisionKind,
    DriftIncident,
    ModelRetrainingLog,
    ModelVersion,
    Trigger,
)
from mlops.selectors import get_champion_model, incumbent_for
from mlops.services.evaluation import (
    DEFAULT_EVALUATION_WINDOWS,
    Recipe,
    judge_candidate,
    record_evaluation,
    version_summary,
)
from mlops.services.lifecycle import (
    ChampionChanged,
    archive_version,
    make_challenger,
    promote_to_champion,
)
from mlops.services.promotion import PromotionDecision, json_ready
from mlops.services.refresh import check_refresh
from tenants.selectors import tenant_policy

if TYPE_CHECKING:
    from forecasting.families import ForecastModel
    from forecasting.panel import Panel

Outcome = ModelRetrainingLog.Outcome
PROMOTE, CHALLENGER, ARCHIVE = "promote", "challenger", "archive"


@dataclass(frozen=True)
class RetrainDecision:
    """What to do with a retrain's result: its kind, the outcome, why, and the evidence."""

    kind: str  # DecisionKind
    action: str  # promote / challenger / archive
    reasons: tuple[str, ...]
    evidence: dict[str, Any]
    waiting_for: str = ""
    # The candidate's held-out metrics (its drift baseline once it serves).
    metrics: dict[str, Any] = field(default_factory=dict)
    # The gate's verdict, when the action rests on one (the promotion checks that the champion
    # it was judged against still serves).
    gate: PromotionDecision | None = field(default=None, compare=False)

    @property
    def reason(self) -> str:
        return " ".join(self.reasons)

    @property
    def outcome(self) -> str:
        if self.action == PROMOTE:
            return Outcome.FIRST if self.kind == DecisionKind.FIRST_MODEL else Outcome.PROMOTED
        return Outcome.CHALLENGER if self.action == CHALLENGER else Outcome.ARCHIVED

    def as_record(self) -> dict[str, Any]:
        """The decision as stored on the version and the retrain log."""
        return json_ready(
            {
                **self.evidence,
                "kind": self.kind,
                "action": self.action,
                "outcome": self.outcome,
                "reasons": list(self.reasons),
                "reason": self.reason,
                "waiting_for": self.waiting_for,
            }
        )


def _incident_of(name: str, segment: str) -> DriftIncident | None:
    return DriftIncident.objects.filter(
        name=name, segment=segment, status=DriftIncident.Status.OPEN
    ).first()


def _promising(decision: PromotionDecision) -> bool:
    """Better on both errors and no worse on coverage, only not (yet) by enough."""
    improvement = decision.improvement
    return bool(
        decision.checks.get("coverage")
        and (improvement.get("mae_pct") or 0) > 0
        and (improvement.get("mape_pct") or 0) > 0
    )


def _gate_decision(
    *, kind: str, gate: PromotionDecision, waiting_for: str = "", **overrides: Any
) -> RetrainDecision:
    evidence = {**gate.as_evidence(), **overrides.pop("extra_evidence", {})}
    return RetrainDecision(
        kind=kind,
        action=overrides.pop("action"),
        reasons=tuple(overrides.pop("reasons")),
        evidence=evidence,
        waiting_for=waiting_for,
        metrics=dict(gate.candidate_metrics),
        gate=gate,
    )


def decide_review(
    *,
    log: ModelRetrainingLog,
    recipe: Recipe,
    panel: Panel,
    windows: int,
) -> RetrainDecision:
    """A drift, new-products or experiment retrain: it waits as challenger for a person. During
    a drift incident it is judged on days after the change from the stored daily forecasts, as
    they come in; otherwise the walk-forward gate says what the system recommends."""
    trigger = Trigger(log.trigger).label.lower()
    incident = _incident_of(log.name, log.segment)
    if log.trigger == Trigger.DRIFT_DETECTED and incident is not None:
        policy = tenant_policy()
        reason = (
            f"Retrained after drift (incident #{incident.pk}, change from "
            f"{incident.change_date}). It has not forecast a day after the change yet: from "
            "tomorrow it is judged every day against the drifted champion on the days after the "
            f"change, and a verdict needs {policy.min_post_change_days} such day(s)."
        )
        return RetrainDecision(
            kind=DecisionKind.REVIEW,
            action=CHALLENGER,
            reasons=(reason,),
            evidence={
                "source": "awaiting_post_change_evidence",
                "incident_id": incident.pk,
                "change_date": incident.change_date,
                "promote": False,
                "candidate": version_summary(None, recipe),
            },
            waiting_for=f"a person's review of drift incident #{incident.pk}",
        )
    gate = judge_candidate(
        name=log.name, candidate=recipe, candidate_version=None, panel=panel, windows=windows
    )
    experiment = (log.trigger_metadata or {}).get("experiment_id")
    waiting = f"experiment #{experiment}" if experiment else "a person's review"
    verdict = "It clears the gate." if gate.promote else "It does not clear the gate."
    return _gate_decision(
        kind=DecisionKind.REVIEW,
        gate=gate,
        action=CHALLENGER,
        reasons=[
            f"Retrained after {trigger}: waits for a person to review and promote it.",
            verdict,
            gate.reason,
        ],
        waiting_for=waiting,
    )


def decide_retrain(
    *,
    log: ModelRetrainingLog,
    recipe: Recipe,
    model: ForecastModel,
    panel: Panel,
    windows: int = DEFAULT_EVALUATION_WINDOWS,
) -> RetrainDecision:
    """Decide what the retrain's freshly trained result becomes; reads, writes nothing."""
    if log.trigger in REVIEWED_TRIGGERS:
        # A person decides, even for a first model: its retrain asked for a review.
        return decide_review(log=log, recipe=recipe, panel=panel, windows=windows)
    if incumbent_for(name=log.name, segment=log.segment) is None:
        gate = judge_candidate(
            name=log.name, candidate=recipe, candidate_version=None, panel=panel, windows=windows
        )
        return _gate_decision(
            kind=DecisionKind.FIRST_MODEL, gate=gate, action=PROMOTE, reasons=[gate.reason]
        )
    own = get_champion_model(name=log.name, segment=log.segment)
    policy = tenant_policy()
    if own is not None and recipe.same_as(Recipe.of(own)):
        check = check_refresh(champion=own, recipe=recipe, model=model, panel=panel, policy=policy)
        return RetrainDecision(
            kind=DecisionKind.REFRESH,
            action=PROMOTE if check.passed else ARCHIVE,
            reasons=(check.reason,),
            evidence={**check.as_evidence(), "promote": check.passed, "replaces_id": own.pk},
            metrics=dict(check.refresh_metrics),
        )
    incident = _incident_of(log.name, log.segment)
    since = incident.change_date if incident is not None else None
    gate = judge_candidate(
        name=log.name,
        candidate=recipe,
        candidate_version=None,
        panel=panel,
        windows=windows,
        since=since,
    )
    if incident is not None and gate.window.get("days", 0) < policy.min_post_change_days:
        return _gate_decision(
            kind=DecisionKind.RECIPE_CHANGE,
            gate=dataclasses.replace(gate, promote=False),
            action=CHALLENGER,
            reasons=[
                f"A recipe change during drift incident #{incident.pk}: only "
                f"{gate.window.get('days', 0)} day(s) after the change {incident.change_date} to "
                f"judge it on (needs {policy.min_post_change_days}); it waits as challenger and is "
                "judged every day on the stored forecasts."
            ],
            waiting_for="the daily judging (days after the drift's change)",
        )
    if gate.promote:
        return _gate_decision(
            kind=DecisionKind.RECIPE_CHANGE, gate=gate, action=PROMOTE, reasons=[gate.reason]
        )
    if _promising(gate):
        return _gate_decision(
            kind=DecisionKind.RECIPE_CHANGE,
            gate=gate,
            action=CHALLENGER,
            reasons=[f"Kept as challenger to gather more evidence. {gate.reason}"],
            waiting_for=(
                f"the daily judging ({policy.min_shadow_days} day(s) of stored forecasts beside "
                "the champion)"
            ),
        )
    return _gate_decision(
        kind=DecisionKind.RECIPE_CHANGE, gate=gate, action=ARCHIVE, reasons=[gate.reason]
    )


def _record(version: ModelVersion, decision: RetrainDecision) -> dict[str, Any]:
    """Keep the decision on the version (its latest evaluation, kind and what it waits for);
    returns the record, which is also the evidence of the move it makes."""
    record = {**decision.as_record(), "candidate": version_summary(version)}
    record = {
        **record,
        "candidate": {**decision.evidence.get("candidate", {}), **record["candidate"]},
    }
    record_evaluation(version=version, evaluation=record, metrics_of=decision.metrics)
    version.decision_kind = decision.kind
    version.waiting_for = decision.waiting_for if decision.action == CHALLENGER else ""
    version.save(update_fields=["decision_kind", "waiting_for", "updated_at"])
    return version.last_evaluation


@transaction.atomic
def apply_retrain_decision(*, version: ModelVersion, decision: RetrainDecision) -> RetrainDecision:
    """Carry out the decision on the freshly registered version, recorded as the system's move;
    returns the decision applied (a promotion whose champion changed meanwhile waits as
    challenger instead). Raises as the lifecycle services."""
    if decision.action == PROMOTE:
        try:
            with transaction.atomic():
                evidence = _record(version, decision)
                promote_to_champion(
                    version=version,
                    actor=None,
                    reason=decision.reason,
                    evidence=evidence,
                    decision=decision.gate,
                    expected_champion_id=decision.evidence.get("replaces_id"),
                )
            return decision
        except ChampionChanged as error:
            decision = dataclasses.replace(
                decision,
                action=CHALLENGER,
                reasons=(*decision.reasons, str(error)),
                waiting_for="the daily judging (the champion changed while it was judged)",
            )
    evidence = _record(version, decision)
    if decision.action == CHALLENGER:
        make_challenger(version=version, actor=None, reason=decision.reason, evidence=evidence)
        incident_id = decision.evidence.get("incident_id")
        if incident_id is not None:
            # The incident's answer: its alert names this version from now on.
            DriftIncident.objects.filter(pk=incident_id, challenger__isnull=True).update(
                challenger=version
            )
    else:
        archive_version(version=version, actor=None, reason=decision.reason, evidence=evidence)
    return decision
