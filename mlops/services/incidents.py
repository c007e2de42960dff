"""Drift incidents: one per drift of a champion, from the day a rule first fires until a new
champion (another recipe, or the champion's own refresh once it was trained on two weeks after
the change), a person's dismissal or a week of quiet closes it.

While an incident is open its alert is updated in place (one alert, one email), no second
emergency retrain is queued, and challengers of its segment are judged on the days after its
change date only. A dismissal re-baselines the champion's drift reference at that day's level and
snoozes new incidents for the tenant's `drift_snooze_days`.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from django.db import transaction

from alerts.models import MLAlert
from alerts.selectors import OPEN_STATUSES
from alerts.services import raise_alert, rewrite_alert
from config.transitions import apply_transition, locked
from mlops.health_cache import forget_model_health
from mlops.models import DriftIncident, ModelRetrainingLog, ModelVersion, Trigger
from mlops.services.drift_text import drift_alert_text, incident_numbers
from tenants.selectors import tenant_policy, tenant_today

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from mlops.services.drift import DriftResult

logger = logging.getLogger(__name__)

Resolution = DriftIncident.Resolution
# Consecutive daily checks with no rule firing after which an incident has recovered.
RECOVERY_DAYS = 7
# Days after the change a refresh of the drifted champion must be trained on to end the
# incident: two weeks, as many as a drift reference reads, and half the longest rolling window
# (its lags and 28-day means have mostly caught up with the new level by then).
ADAPTED_DAYS = 14


def open_incident(*, name: str, segment: str) -> DriftIncident | None:
    """The open incident of name/segment, if any."""
    return (
        DriftIncident.objects.filter(name=name, segment=segment, status=DriftIncident.Status.OPEN)
        .select_related("champion", "challenger", "alert")
        .first()
    )


def incident_answered_by(version: ModelVersion) -> DriftIncident | None:
    """The incident a version was trained for, else the open incident of its segment."""
    return DriftIncident.objects.filter(challenger=version).order_by(
        "-pk"
    ).first() or open_incident(name=version.name, segment=version.segment)


def snoozed_until(*, name: str, segment: str, day: dt.date) -> dt.date | None:
    """The end of a snooze in force on `day` after a person dismissed a drift, else None."""
    snooze = (
        DriftIncident.objects.filter(
            name=name, segment=segment, snoozed_until__gt=day, resolution=Resolution.DISMISSED
        )
        .order_by("-snoozed_until")
        .values_list("snoozed_until", flat=True)
        .first()
    )
    return snooze


@transaction.atomic
def resolve_incident(
    *,
    incident: DriftIncident,
    resolution: str,
    note: str,
    day: dt.date | None = None,
    actor: AbstractBaseUser | None = None,
    close_alert: bool = True,
) -> DriftIncident:
    """Close an open incident with its resolution; a dismissal re-baselines its champion at
    `day` and snoozes new incidents. Its alert is closed by the system unless a person already
    acted on it (or is acting on it now: `close_alert` false). Returns the incident (an already
    resolved one unchanged)."""
    from alerts.services import resolve_alert

    incident = locked(incident)
    if incident.status != DriftIncident.Status.OPEN:
        return incident
    day = day or tenant_today()
    fields: dict[str, Any] = {
        "resolution": resolution,
        "resolved_on": day,
        "resolved_by": actor,
        "resolution_note": note,
    }
    if resolution == Resolution.DISMISSED:
        fields["snoozed_until"] = day + dt.timedelta(days=tenant_policy().drift_snooze_days)
        ModelVersion.objects.filter(pk=incident.champion_id).update(monitoring_since=day)
    apply_transition(
        incident,
        "resolve",
        actor=actor,
        action="resolve",
        describe=f"drift incident #{incident.pk}",
        **fields,
    )
    forget_model_health()
    if close_alert and incident.alert_id is not None:
        label = Resolution(resolution).label.lower()
        resolve_alert(alert=incident.alert, note=f"Drift incident #{incident.pk} closed: {label}.")
    return incident


def _carries_on(incident: DriftIncident, champion: ModelVersion) -> bool:
    """Whether `champion` is a refresh of the incident's champion: the same recipe in service,
    still drifting against the same reference until one has learnt the new level."""
    from mlops.selectors import refresh_lineage

    return any(each.pk == incident.champion_id for each in refresh_lineage(champion))


def _days_after_change(incident: DriftIncident, version: ModelVersion) -> int:
    """How many days after the incident's change date the version was trained on."""
    if version.training_end is None:
        return 0
    return max((version.training_end - incident.change_date).days + 1, 0)


def on_new_champion(*, version: ModelVersion) -> None:
    """A new champion serves name/segment: its open incident is over (a recipe change, a review
    or an override starts a drift reference of its own). A refresh of the drifted champion
    carries the incident on until one is trained on `ADAPTED_DAYS` after the change: that one
    has learnt the new level, so it ends the incident, starts the drift reference again from
    its own first days, and retires the incident's challenger unless the evidence recommends
    it."""
    incident = open_incident(name=version.name, segment=version.segment)
    if incident is None or incident.champion_id == version.pk:
        return
    if not _carries_on(incident, version):
        resolve_incident(
            incident=incident,
            resolution=Resolution.NEW_CHAMPION,
            note=f"{version.version} became champion of {version.where}.",
        )
        return
    days = _days_after_change(incident, version)
    if days < ADAPTED_DAYS:
        DriftIncident.objects.filter(pk=incident.pk).update(champion=version)
        return
    ModelVersion.objects.filter(pk=version.pk).update(monitoring_since=version.training_end)
    resolve_incident(
        incident=incident,
        resolution=Resolution.NEW_CHAMPION,
        note=f"{version.version}, the champion's weekly refresh, was trained on {days} days after "
        f"the change of {incident.change_date} and took over; drift is watched again from its "
        "own first days.",
    )
    _retire_challenger(incident=incident, champion=version)


def _retire_challenger(*, incident: DriftIncident, champion: ModelVersion) -> None:
    """Archive the incident's challenger, still waiting, when its latest verdict does not
    recommend it: the incident it answered is over, and the champion that ended it learnt the
    new level from more days than it did."""
    from mlops.services.lifecycle import archive_version
    from mlops.services.review import recommends

    challenger = incident.challenger
    if challenger is None:
        return
    challenger.refresh_from_db()
    if challenger.status not in ModelVersion.AWAITING_DECISION or recommends(
        challenger.last_evaluation or {}
    ):
        return
    archive_version(
        version=challenger,
        actor=None,
        reason=f"Drift incident #{incident.pk}, which it was trained for, closed when "
        f"{champion.version} took over; {challenger.version} did not beat the champion. "
        + str((challenger.last_evaluation or {}).get("reason", "")),
        evidence=challenger.last_evaluation or {},
    )


# -- acting on a drift check ---------------------------------------------------------------------


@transaction.atomic
def act_on_drift(*, result: DriftResult, champion: ModelVersion) -> None:
    """Open, update or close the champion's drift incident after a check, filling in `result`:
    a first drift opens an incident (with its alert and emergency retrain); later checks of an
    open one update it in place; a week without a rule firing closes it as recovered."""
    forget_model_health()  # once committed
    incident = open_incident(name=result.name, segment=result.segment)
    if (
        incident is not None
        and incident.champion_id != champion.pk
        and _carries_on(incident, champion)
    ):
        DriftIncident.objects.filter(pk=incident.pk).update(champion=champion)
        incident.champion = champion
    if incident is not None and incident.champion_id != champion.pk:
        resolve_incident(
            incident=incident,
            resolution=Resolution.NEW_CHAMPION,
            note=f"{champion.version} serves {champion.where} now.",
            day=result.as_of,
        )
        incident = None
    if incident is not None:
        _check_open_incident(incident=locked(incident), result=result)
        return
    if not result.drifting:
        return
    snooze = snoozed_until(name=result.name, segment=result.segment, day=result.as_of)
    if snooze is not None:
        result.snoozed_until = snooze
        result.retrain_skipped_reason = (
            f"a person dismissed the last drift of {champion.where}; new incidents are snoozed "
            f"until {snooze}"
        )
        return
    _open(result=result, champion=champion)


def _waiting_drift_challenger(name: str, segment: str) -> ModelVersion | None:
    return (
        ModelVersion.objects.filter(
            name=name,
            segment=segment,
            trigger=Trigger.DRIFT_DETECTED,
            status__in=ModelVersion.AWAITING_DECISION,
        )
        .order_by("-version_number")
        .first()
    )


def _open(*, result: DriftResult, champion: ModelVersion) -> DriftIncident:
    numbers = incident_numbers(result, champion)
    incident = DriftIncident.objects.create(
        name=result.name,
        segment=result.segment,
        champion=champion,
        change_date=result.change_date or result.as_of,
        opened_on=result.as_of,
        last_checked_on=result.as_of,
        rules=list(result.rules),
        detection=numbers,
        latest=numbers,
    )
    waiting = _waiting_drift_challenger(result.name, result.segment)
    next_step = _answer(
        incident=incident, result=result, champion=champion, numbers=numbers, waiting=waiting
    )
    incident.root_cause = _root_cause(incident, until=result.as_of)
    title, message = drift_alert_text(incident=incident, result=result, next_step=next_step)
    incident.alert = raise_alert(
        alert_type=MLAlert.AlertType.DRIFT_DETECTED,
        severity=MLAlert.Severity.CRITICAL,
        title=title,
        message=message,
        metadata={
            **numbers,
            "incident_id": incident.pk,
            "retrain_log_id": result.retrain_log_id,
            "retrain_queued": result.retrain_queued,
            "next_step": next_step,
            **({"challenger_version": waiting.version} if waiting is not None else {}),
        },
        dedup_key=f"drift_detected:incident:{incident.pk}",
        model_version=waiting,
    )
    incident.save(update_fields=["challenger", "retrain_log", "alert", "root_cause", "updated_at"])
    result.incident_id, result.incident_opened = incident.pk, True
    result.alert_id = incident.alert_id
    logger.warning(
        "Drift of %s %s as of %s (%s): incident #%s from %s",
        champion.where,
        champion.version,
        result.as_of,
        ", ".join(result.rules),
        incident.pk,
        incident.change_date,
    )
    return incident


def _answer(
    *,
    incident: DriftIncident,
    result: DriftResult,
    champion: ModelVersion,
    numbers: dict[str, Any],
    waiting: ModelVersion | None,
) -> str:
    """What answers a new incident: the drift challenger that still waits, else a drift retrain
    already pending, else a new emergency retrain, linked to the incident. Returns the next step
    the alert names."""
    from mlops.services.retraining import queue_retrain

    if waiting is not None:
        incident.challenger = waiting
        result.retrain_skipped_reason = (
            f"{waiting.version} from an earlier drift retrain still waits for a decision"
        )
        return (
            f"No new retrain was queued: {result.retrain_skipped_reason}; it is judged every day "
            f"against {champion.version} on the days after {incident.change_date}."
        )
    pending = (
        ModelRetrainingLog.objects.filter(
            name=result.name,
            segment=result.segment,
            trigger=Trigger.DRIFT_DETECTED,
            status__in=ModelRetrainingLog.PENDING,
        )
        .order_by("-created_at")
        .first()
    )
    log = pending or queue_retrain(
        trigger=Trigger.DRIFT_DETECTED,
        name=result.name,
        segment=result.segment,
        trigger_metadata={**numbers, "incident_id": incident.pk},
    )
    incident.retrain_log = log
    result.retrain_log_id = log.pk
    result.retrain_queued = pending is None and log.trigger == Trigger.DRIFT_DETECTED
    if not result.retrain_queued:
        result.retrain_skipped_reason = (
            f"{log.get_trigger_display().lower()} retrain #{log.pk} is already {log.status}"
        )
        return f"No new retrain was queued: {result.retrain_skipped_reason}."
    return (
        f"An emergency retrain (#{log.pk}) of {champion.version}'s recipe on the freshest "
        "sales was queued. From the day after it is trained it is judged against "
        f"{champion.version} on the days after {incident.change_date}; it waits for a "
        "person, and the alert says what the numbers recommend."
    )


def _root_cause(incident: DriftIncident, *, until: dt.date) -> dict[str, Any]:
    """The incident's root cause up to `until`; empty (and logged) when it cannot be computed,
    which never stops the incident or its alert."""
    from mlops.services.rootcause import incident_root_cause

    try:
        with transaction.atomic():  # a failed query must not abort the check's transaction
            return incident_root_cause(incident=incident, until=until)
    except Exception:
        logger.exception("Root cause of drift incident #%s failed", incident.pk)
        return {}


def _check_open_incident(*, incident: DriftIncident, result: DriftResult) -> None:
    """A later check while the incident is open: count quiet days, update the alert in place
    on a drifting day, close it after a quiet week."""
    result.incident_id, result.alert_id = incident.pk, incident.alert_id
    result.retrain_log_id = incident.retrain_log_id
    result.change_date = incident.change_date
    if incident.retrain_log is not None:
        result.retrain_skipped_reason = (
            f"incident #{incident.pk}'s retrain #{incident.retrain_log_id} is already "
            f"{incident.retrain_log.status}"
        )
    if incident.challenger is not None:
        result.retrain_skipped_reason = (
            f"{incident.challenger.version}, trained for incident #{incident.pk}, waits for a "
            "decision"
        )
    if incident.last_checked_on == result.as_of:
        result.retrain_skipped_reason = "already checked for this day"
        return
    incident.last_checked_on = result.as_of
    incident.quiet_days = 0 if result.drifting else incident.quiet_days + 1
    if result.drifting:
        incident.latest = incident_numbers(result, incident.champion)
        incident.root_cause = _root_cause(incident, until=result.as_of) or incident.root_cause
    incident.save(
        update_fields=["last_checked_on", "quiet_days", "latest", "root_cause", "updated_at"]
    )
    if incident.quiet_days >= RECOVERY_DAYS:
        resolve_incident(
            incident=incident,
            resolution=Resolution.RECOVERED,
            note=f"No drift rule fired on {RECOVERY_DAYS} consecutive days.",
            day=result.as_of,
        )
        return
    if result.drifting and incident.alert is not None:
        refresh_incident_alert(incident=incident, result=result)


def refresh_incident_alert(
    *, incident: DriftIncident, result: DriftResult | None = None, next_step: str | None = None
) -> None:
    """Rewrite the incident's open alert with its latest numbers and next step (no new alert,
    no email): a drifting day's check counts as the alert raised again, a new challenger or
    verdict (`result` None) only rewrites it."""
    alert = incident.alert
    if alert is None or alert.status not in OPEN_STATUSES:
        return
    next_step = next_step or alert.metadata.get("next_step", "")
    title, message = drift_alert_text(incident=incident, result=result, next_step=next_step)
    metadata = {**alert.metadata, **incident.latest, "next_step": next_step}
    if incident.challenger is not None:
        metadata["challenger_version"] = incident.challenger.version
    if result is None:
        rewrite_alert(
            alert=alert,
            title=title,
            message=message,
            metadata=metadata,
            model_version=incident.challenger,
        )
        return
    raise_alert(
        alert_type=MLAlert.AlertType.DRIFT_DETECTED,
        severity=MLAlert.Severity.CRITICAL,
        title=title,
        message=message,
        metadata=metadata,
        dedup_key=alert.dedup_key,
        model_version=incident.challenger,
    )
