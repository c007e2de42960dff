"""Where the registry needs a person: the alerts that ask for a review, and what approving or
dismissing them does (registered with `alerts.registry` in `MlopsConfig.ready()`).

A version is offered for approval only while the evidence says it is better: its
`promotion_pending` alert opens when the gate clears, is rewritten in place while it waits, and
is closed by the system if the verdict turns. A person may still promote against the evidence;
that is recorded as an override, with their note as the reason.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from alerts.models import MLAlert
from alerts.registry import AlertTypeActions, register
from alerts.selectors import OPEN_STATUSES
from alerts.services import raise_alert, resolve_alert, rewrite_alert
from forecasting import metrics
from mlops.health_cache import forget_model_health
from mlops.models import (
    DecisionKind,
    DriftIncident,
    ModelRetrainingLog,
    ModelVersion,
    Trigger,
    segment_label,
)
from mlops.selectors import incumbent_for
from mlops.services.incidents import (
    refresh_incident_alert,
    resolve_incident,
)
from mlops.services.lifecycle import promote_to_champion, reject_model_version
from tenants.selectors import tenant_policy

Status = ModelVersion.Status


def _numbers(values: dict | None) -> dict:
    """The scalar entries of a metadata dict (nested structures stay in their own records)."""
    return {
        key: value
        for key, value in (values or {}).items()
        if isinstance(value, str | int | float | bool) or value is None
    }


def evaluation_numbers(evaluation: dict) -> dict:
    """Champion/challenger numbers of a version's latest evaluation, flattened."""
    candidate = evaluation.get("candidate_metrics") or {}
    champion = evaluation.get("champion_metrics") or {}
    improvement = evaluation.get("improvement") or {}
    found = {
        "champion_mae": champion.get("mae"),
        "challenger_mae": candidate.get("mae"),
        "mae_improvement_pct": improvement.get("mae_pct"),
        "champion_mape": champion.get("mape"),
        "challenger_mape": candidate.get("mape"),
        "mape_improvement_pct": improvement.get("mape_pct"),
        "confidence": (evaluation.get("test") or {}).get("confidence"),
        "evidence_days": (evaluation.get("window") or {}).get("days"),
    }
    return {key: value for key, value in found.items() if isinstance(value, int | float)}


def recommends(evaluation: dict) -> bool:
    """Whether a version's latest evaluation says it should replace the champion."""
    return bool(evaluation.get("promote")) and evaluation.get("ready", True) is not False


def _pending_key(version: ModelVersion) -> str:
    return f"promotion_pending:modelversion:{version.pk}"


def _open_pending(version: ModelVersion) -> MLAlert | None:
    return MLAlert.objects.filter(dedup_key=_pending_key(version), status__in=OPEN_STATUSES).first()


def flag_for_review(*, version: ModelVersion, because: str) -> MLAlert | None:
    """Raise or rewrite in place the `promotion_pending` alert of a version that waits for a
    person, when its latest evaluation recommends it; close it when the verdict has turned.
    Returns the open alert, or None."""
    evaluation = version.last_evaluation or {}
    if not recommends(evaluation):
        alert = _open_pending(version)
        if alert is not None:
            resolve_alert(
                alert=alert,
                note=f"{version.version} no longer clears the gate: {evaluation.get('reason', '')}",
            )
        return None
    champion = incumbent_for(name=version.name, segment=version.segment)
    numbers = evaluation_numbers(evaluation)
    change = metrics.better_or_worse(numbers.get("mae_improvement_pct"))
    where = segment_label(version.name, version.segment)
    text = {
        "title": f"Promotion pending: {version.name} {version.version} awaits review (MAE {change})",
        "message": (
            f"{because.capitalize()}, {version.version} of {where} waits as challenger"
            + (f" beside champion {champion.version}" if champion else "")
            + " and the evidence recommends it. Approve to make it champion, or dismiss it."
            + f"\n\nThe arena's verdict: {evaluation.get('reason', '')}"
        ),
        "metadata": {
            "challenger_version": version.version,
            "champion_version": champion.version if champion else "",
            "decision_kind": version.decision_kind,
            **numbers,
        },
    }
    pending = _open_pending(version)
    if pending is not None:
        # The same review, with today's numbers: rewritten in place, never a second alert.
        return rewrite_alert(alert=pending, model_version=version, **text)
    return raise_alert(
        alert_type=MLAlert.AlertType.PROMOTION_PENDING,
        severity=MLAlert.Severity.WARNING,
        dedup_key=_pending_key(version),
        model_version=version,
        **text,
    )


def notify_retrain_outcome(*, log: ModelRetrainingLog) -> MLAlert | None:
    """Return the alert a finished retrain calls for, raised: retrain failed (warning); for a
    reviewed retrain whose challenger the evidence recommends, promotion pending; during a
    drift incident, the incident's alert rewritten with its new challenger. Else None."""
    where = segment_label(log.name, log.segment)
    trigger = log.get_trigger_display().lower()
    if log.status == ModelRetrainingLog.Status.FAILED:
        return raise_alert(
            alert_type=MLAlert.AlertType.RETRAIN_FAILED,
            severity=MLAlert.Severity.WARNING,
            title=f"Retrain of {where} failed ({trigger})",
            message=(
                f"The {trigger} retrain of {where} failed after {log.attempts} attempt(s). The "
                f"current champion keeps serving.\n\n{log.error}".strip()
            ),
            metadata={
                "retrain_log_id": log.pk,
                "trigger": log.trigger,
                "attempts": log.attempts,
                "error": (log.error or "")[:500],
                **_numbers(log.trigger_metadata),
            },
            dedup_key=f"retrain_failed:{log.name}:{log.segment}",
        )
    version = log.resulting_version
    if (
        log.status != ModelRetrainingLog.Status.SUCCEEDED
        or log.trigger not in (Trigger.DRIFT_DETECTED, Trigger.NEW_PRODUCTS)
        or version is None
        or version.status != Status.CHALLENGER
    ):
        return None
    incident = DriftIncident.objects.filter(
        pk=(log.trigger_metadata or {}).get("incident_id"), status=DriftIncident.Status.OPEN
    ).first()
    if incident is not None:
        incident.challenger = version
        incident.save(update_fields=["challenger", "updated_at"])
        forget_model_health()
        refresh_incident_alert(
            incident=incident,
            next_step=(
                f"The emergency retrain made {version.version}, now a challenger. From tomorrow "
                f"it is judged every day against {incident.champion.version} on the days after "
                f"{incident.change_date}; after {tenant_policy().min_post_change_days} such "
                "day(s) this alert says what the numbers recommend."
            ),
        )
        return incident.alert
    because = (
        "drift was detected" if log.trigger == Trigger.DRIFT_DETECTED else ("new products appeared")
    )
    alert = flag_for_review(version=version, because=f"a retrain ran because {because}")
    if alert is not None:
        extra = {"retrain_log_id": log.pk, "trigger": log.trigger, **_numbers(log.trigger_metadata)}
        MLAlert.objects.filter(pk=alert.pk).update(metadata={**alert.metadata, **extra})
        alert.refresh_from_db()
    return alert


# -- acting on the alerts --------------------------------------------------------------------------


def _reason(alert: MLAlert, verb: str, note: str) -> str:
    reason = f"{verb} from ML alert #{alert.pk} ({alert.get_alert_type_display()})"
    return f"{reason}: {note}" if note else reason


def _reviewed_version(alert: MLAlert) -> ModelVersion | None:
    if alert.model_version_id is not None:
        return ModelVersion.objects.get(pk=alert.model_version_id)
    incident = DriftIncident.objects.filter(pk=alert.metadata.get("incident_id")).first()
    return incident.challenger if incident is not None else None


def approve_review(*, alert: MLAlert, user, note: str) -> dict[str, Any]:
    """Approving a drift or promotion alert promotes its challenger as a person's decision —
    a review where the evidence recommends it, else an override. With nothing to promote it
    acknowledges the alert."""
    version = _reviewed_version(alert)
    if version is None:
        return {"result": "acknowledged"}
    if version.status == Status.CHAMPION:
        # Promoted meanwhile by another path: approving has nothing left to do.
        return {"version": version.version, "result": "already_champion"}
    evaluation = version.last_evaluation or {}
    kind = DecisionKind.REVIEW if recommends(evaluation) else DecisionKind.OVERRIDE
    verb = "Approved" if kind == DecisionKind.REVIEW else "Promoted against the evidence (override)"
    promote_to_champion(
        version=version,
        actor=user,
        reason=_reason(alert, verb, note),
        evidence={
            "kind": kind,
            "alert_id": alert.pk,
            "alert_type": alert.alert_type,
            "evaluation": evaluation,
            **_numbers(alert.metadata),
        },
    )
    ModelVersion.objects.filter(pk=version.pk).update(decision_kind=kind, waiting_for="")
    for other in MLAlert.objects.filter(model_version=version, status__in=OPEN_STATUSES).exclude(
        pk=alert.pk
    ):
        resolve_alert(alert=other, note=f"{version.version} was promoted from alert #{alert.pk}.")
    return {"version": version.version, "result": "promoted"}


def dismiss_review(*, alert: MLAlert, user, note: str) -> dict[str, Any]:
    """Dismissing a drift alert closes its incident (the champion is re-baselined and new
    incidents snoozed); dismissing a drift or promotion alert keeps or archives its challenger
    as the tenant's `dismissed_challenger` says."""
    decision: dict[str, Any] = {}
    incident = DriftIncident.objects.filter(pk=alert.metadata.get("incident_id")).first()
    if alert.alert_type == MLAlert.AlertType.DRIFT_DETECTED and incident is not None:
        resolve_incident(
            incident=incident,
            resolution=DriftIncident.Resolution.DISMISSED,
            note=_reason(alert, "Dismissed", note),
            actor=user,
            close_alert=False,  # the person's dismissal closes it
        )
        incident.refresh_from_db()
        decision["incident"] = {"id": incident.pk, "snoozed_until": str(incident.snoozed_until)}
    version = _reviewed_version(alert)
    if version is None:
        return {**decision, "result": "dismissed"}
    policy = tenant_policy().dismissed_challenger
    if policy != "archive" or version.status not in ModelVersion.AWAITING_DECISION:
        return {**decision, "version": version.version, "result": "kept", "policy": policy}
    reject_model_version(version=version, actor=user, reason=_reason(alert, "Dismissed", note))
    return {**decision, "version": version.version, "result": "archived", "policy": policy}


def _incident_of(alert: MLAlert) -> DriftIncident | None:
    """The drift incident a drift alert is about."""
    if alert.alert_type != MLAlert.AlertType.DRIFT_DETECTED:
        return None
    return (
        DriftIncident.objects.filter(pk=alert.metadata.get("incident_id"))
        .select_related("champion")
        .first()
    )


def review_approvable(alert: MLAlert) -> bool:
    """A drift or promotion alert is worth approving when a waiting challenger is named and its
    evidence recommends it (otherwise a person acknowledges or dismisses it). For a drift
    alert, that evidence must be the incident's own: its open incident's challenger, judged on
    the days after this incident's change (a challenger kept from an earlier incident carries
    that incident's verdict until it is judged again)."""
    version = _reviewed_version(alert)
    if (
        version is None
        or version.status not in ModelVersion.AWAITING_DECISION
        or not recommends(version.last_evaluation or {})
    ):
        return False
    incident = _incident_of(alert)
    if incident is None:
        return alert.alert_type != MLAlert.AlertType.DRIFT_DETECTED
    return (
        incident.status == DriftIncident.Status.OPEN
        and incident.challenger_id == version.pk
        and (version.last_evaluation or {}).get("incident_id") == incident.pk
    )


def _kept_or_archived(version: ModelVersion) -> str:
    archived = tenant_policy().dismissed_challenger == "archive"
    return f"{version.version} {'archived' if archived else 'kept as challenger'}"


def review_admin_context(alert: MLAlert) -> dict[str, Any] | None:
    """The alert page's view of what it is about (the promotion gate on its challenger) and
    what each of its buttons does."""
    from mlops.admin.review import decision_section

    version = _reviewed_version(alert)
    context: dict[str, Any] = {}
    if version is not None:
        context.update(
            version_decision=decision_section(version),
            reviewed_version=version.version,
            approve_label=f"Approve: promote {version.version} to champion",
            dismiss_label=f"Dismiss ({_kept_or_archived(version)})",
        )
    incident = _incident_of(alert)
    if incident is not None:
        kept = f"; {_kept_or_archived(version)}" if version is not None else ""
        context.update(
            acknowledge_label="Acknowledge (the drift incident stays open)",
            dismiss_label=f"Dismiss: accept the new level ({incident.champion.version} "
            f"re-baselined, no new drift incident for {tenant_policy().drift_snooze_days} "
            f"days{kept})",
        )
    return context or None


def review_page(alert: MLAlert) -> tuple[str, str] | None:
    """A drift alert is reviewed on its incident's drift page."""
    incident_id = alert.metadata.get("incident_id")
    if alert.alert_type != MLAlert.AlertType.DRIFT_DETECTED or not incident_id:
        return None
    url = reverse("admin:mlops_driftincident_change", args=[incident_id])
    return url, f"Open drift incident #{incident_id}"


def register_alert_actions() -> None:
    """What acting on the registry's alert types does (called from MlopsConfig.ready)."""
    actions = AlertTypeActions(
        approve=approve_review,
        dismiss=dismiss_review,
        approvable=review_approvable,
        admin_context=review_admin_context,
        review=review_page,
    )
    register(MLAlert.AlertType.DRIFT_DETECTED, actions)
    register(MLAlert.AlertType.PROMOTION_PENDING, actions)
