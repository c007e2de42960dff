"""Writes of the alert inbox: raise (deduplicated), read, approve/dismiss, and deliver notifications."""

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django_fsm import TransitionNotAllowed, can_proceed, has_transition_perm

from alerts.channels import TransportError, transport_for
from alerts.models import MLAlert, NotificationChannel, NotificationDelivery, UndeliverableRecipient
from alerts.selectors import CLOSED_STATUSES, OPEN_STATUSES, SEVERITY_RANK

logger = logging.getLogger(__name__)

TENANT_URLCONF = "config.urls_tenant"

# How long after an alert was closed (approved or dismissed) the same cause raised again stays
# quiet: the closed alert counts the repeat, no new alert is opened and nobody is notified.
# After the cooldown a new alert opens. Override per type with settings.ALERT_COOLDOWN_SECONDS.
DEFAULT_COOLDOWN_SECONDS: dict[str, int] = {
    MLAlert.AlertType.DRIFT_DETECTED: 24 * 3600,
    MLAlert.AlertType.PROMOTION_PENDING: 0,  # keyed per challenger: a new challenger is news
    MLAlert.AlertType.BACKTEST_DEGRADATION: 24 * 3600,
    MLAlert.AlertType.EXPERIMENT_COMPLETE: 0,
    MLAlert.AlertType.RETRAIN_FAILED: 3600,
}

# Alert types whose approval promotes the alert's model version (the challenger).
DECIDES_A_CHALLENGER = (MLAlert.AlertType.DRIFT_DETECTED, MLAlert.AlertType.PROMOTION_PENDING)
ACTIONS = ("approve", "dismiss")


def cooldown_for(alert_type: str) -> timedelta:
    overrides = settings.ALERT_COOLDOWN_SECONDS
    seconds = overrides.get(alert_type, DEFAULT_COOLDOWN_SECONDS.get(alert_type, 0))
    return timedelta(seconds=seconds)


def default_dedup_key(*, alert_type: str, model_version=None, experiment=None) -> str:
    """The cause of an alert: its type and the object it is about."""
    if model_version is not None:
        return f"{alert_type}:modelversion:{model_version.pk}"
    if experiment is not None:
        return f"{alert_type}:experiment:{experiment.pk}"
    return str(alert_type)


def alert_admin_url(alert: MLAlert) -> str:
    """The alert's page in the tenant admin, where a person approves or dismisses it."""
    return reverse("admin:alerts_mlalert_change", args=[alert.pk], urlconf=TENANT_URLCONF)


@transaction.atomic
def raise_alert(
    *,
    alert_type: str,
    severity: str,
    title: str,
    message: str,
    metadata: dict | None = None,
    dedup_key: str | None = None,
    model_version=None,
    experiment=None,
    action_url: str | None = None,
) -> MLAlert:
    """Return the open alert for this cause: new (and notified once committed) or updated and counted.

    A repeat while the alert is open updates its text and metadata, escalates its severity if
    higher, counts the occurrence and notifies nobody. Within the type's cooldown after the
    alert was closed, a repeat is counted on the closed alert and returns it. Raises ValueError
    for an unknown type or severity.
    """
    if alert_type not in MLAlert.AlertType.values:
        raise ValueError(f"Unknown alert type {alert_type!r}")
    if severity not in MLAlert.Severity.values:
        raise ValueError(f"Unknown severity {severity!r}")
    key = dedup_key or default_dedup_key(
        alert_type=alert_type, model_version=model_version, experiment=experiment
    )
    fields = {
        "alert_type": alert_type,
        "severity": severity,
        "title": title[:300],
        "message": message,
        "metadata": metadata or {},
        "model_version": model_version,
        "experiment": experiment,
    }
    # Two attempts: a concurrent raise of the same cause may insert first, and the partial unique
    # index ("one open alert per cause") then refuses ours; the second pass finds and updates it.
    for _ in range(2):
        now = timezone.now()
        existing = (
            MLAlert.objects.select_for_update()
            .filter(dedup_key=key, status__in=OPEN_STATUSES)
            .first()
        )
        if existing is not None:
            return _count_repeat(existing, fields=fields, action_url=action_url, now=now)
        recently_closed = _closed_within_cooldown(key=key, alert_type=alert_type, now=now)
        if recently_closed is not None:
            MLAlert.objects.filter(pk=recently_closed.pk).update(
                occurrences=F("occurrences") + 1, last_raised_at=now
            )
            recently_closed.refresh_from_db()
            return recently_closed
        try:
            with transaction.atomic():
                alert = MLAlert.objects.create(
                    dedup_key=key, action_url=action_url or "", last_raised_at=now, **fields
                )
        except IntegrityError:
            continue
        if not action_url:
            alert.action_url = alert_admin_url(alert)
            alert.save(update_fields=["action_url"])
        _queue_delivery(alert)
        return alert
    raise IntegrityError(f"Could not open or find the alert {key!r}")


def _count_repeat(alert: MLAlert, *, fields: dict, action_url: str | None, now) -> MLAlert:
    alert.title = fields["title"]
    alert.message = fields["message"]
    alert.metadata = fields["metadata"]
    if SEVERITY_RANK[fields["severity"]] > SEVERITY_RANK[alert.severity]:
        alert.severity = fields["severity"]
    for name in ("model_version", "experiment"):
        if fields[name] is not None:
            setattr(alert, name, fields[name])
    if action_url:
        alert.action_url = action_url
    alert.occurrences += 1
    alert.last_raised_at = now
    alert.save()
    return alert


def _closed_within_cooldown(*, key: str, alert_type: str, now) -> MLAlert | None:
    cooldown = cooldown_for(alert_type)
    if not cooldown:
        return None
    return (
        MLAlert.objects.filter(
            dedup_key=key, status__in=CLOSED_STATUSES, actioned_at__gte=now - cooldown
        )
        .order_by("-actioned_at")
        .first()
    )


def _queue_delivery(alert: MLAlert) -> None:
    from alerts.tasks import deliver_alert

    alert_id = alert.pk
    transaction.on_commit(lambda: deliver_alert.delay(alert_id))


@transaction.atomic
def mark_alert_read(*, alert: MLAlert, user) -> MLAlert:
    """Return the alert, marked read by `user` if it was unread (reading it again changes nothing)."""
    alert = MLAlert.objects.select_for_update().get(pk=alert.pk)
    if alert.status == MLAlert.Status.UNREAD:
        alert.mark_read()
        alert.read_by = user
        alert.read_at = timezone.now()
        alert.save()
    return alert


@transaction.atomic
def act_on_alert(*, alert: MLAlert, user, action: str, note: str = "") -> MLAlert:
    """Return the alert approved or dismissed by `user`, with what that did to its challenger.

    Approving a drift or promotion alert promotes its model version through the registry;
    dismissing one archives or keeps it as the tenant's `dismissed_challenger` says. Raises
    ValueError (unknown action), PermissionDenied (the user may not act, or may not promote /
    archive), TransitionNotAllowed (alert already closed, or the version cannot move); a refusal
    changes nothing.
    """
    if action not in ACTIONS:
        raise ValueError(f"Unknown action {action!r}; use one of {', '.join(ACTIONS)}")
    alert = MLAlert.objects.select_for_update().get(pk=alert.pk)
    transition = alert.approve if action == "approve" else alert.dismiss
    if not can_proceed(transition):
        raise TransitionNotAllowed(
            f"Alert #{alert.pk} is already {alert.status}.", object=alert, method=transition
        )
    if not has_transition_perm(transition, user):
        raise PermissionDenied(f"{user} may not {action} ML alerts.")
    now = timezone.now()
    decision = None
    if alert.alert_type in DECIDES_A_CHALLENGER and alert.model_version is not None:
        if action == "approve":
            decision = _approve_challenger(alert=alert, user=user, note=note)
        else:
            decision = _dismiss_challenger(alert=alert, user=user, note=note)
    if alert.read_at is None:
        alert.read_by, alert.read_at = user, now
    transition()
    alert.actioned_by = user
    alert.actioned_at = now
    alert.action_note = note
    if decision is not None:
        alert.metadata = {**alert.metadata, "decision": decision}
    alert.save()
    return alert


def _approve_challenger(*, alert: MLAlert, user, note: str) -> dict:
    from mlops.models import ModelVersion
    from mlops.services import promote_to_champion

    version = ModelVersion.objects.get(pk=alert.model_version_id)
    if version.status == ModelVersion.Status.CHAMPION:
        # Promoted meanwhile by another path: approving has nothing left to do.
        return {"version": version.version, "result": "already_champion"}
    promote_to_champion(
        version=version,
        actor=user,
        reason=_reason(alert, "Approved", note),
        evidence={"alert_id": alert.pk, "alert_type": alert.alert_type, **alert.metadata},
    )
    return {"version": version.version, "result": "promoted"}


def _dismiss_challenger(*, alert: MLAlert, user, note: str) -> dict:
    from mlops.models import ModelVersion

    version = ModelVersion.objects.get(pk=alert.model_version_id)
    waiting = (
        ModelVersion.Status.CANDIDATE,
        ModelVersion.Status.SHADOW,
        ModelVersion.Status.CHALLENGER,
    )
    from tenants.selectors import current_tenant

    policy = getattr(current_tenant(), "dismissed_challenger", "keep")
    if policy != "archive" or version.status not in waiting:
        return {"version": version.version, "result": "kept", "policy": policy}
    from mlops.services import reject_model_version

    reject_model_version(version=version, actor=user, reason=_reason(alert, "Dismissed", note))
    return {"version": version.version, "result": "archived", "policy": policy}


def _reason(alert: MLAlert, verb: str, note: str) -> str:
    reason = f"{verb} from ML alert #{alert.pk} ({alert.get_alert_type_display()})"
    return f"{reason}: {note}" if note else reason


# --- Wiring from the retrain flow ---------------------------------------------------------

# Retrains a person asked to review: their challengers wait for an approval.
REVIEWED_TRIGGERS = ("drift_detected", "new_products")


def notify_retrain_outcome(*, log) -> MLAlert | None:
    """Return the alert a finished retrain calls for, raised: promotion pending, retrain failed, or None.

    A drift-triggered or new-products retrain that produced a challenger raises
    `promotion_pending` (warning, linked to the challenger); a failed retrain raises
    `retrain_failed` (warning). Other outcomes raise nothing.
    """
    from mlops.models import ModelRetrainingLog, ModelVersion
    from mlops.selectors import get_champion_model

    where = log.name if log.segment == "global" else f"{log.name} [{log.segment}]"
    if log.status == ModelRetrainingLog.Status.FAILED:
        return raise_alert(
            alert_type=MLAlert.AlertType.RETRAIN_FAILED,
            severity=MLAlert.Severity.WARNING,
            title=f"Retrain of {where} failed ({log.get_trigger_display().lower()})",
            message=(
                f"The {log.get_trigger_display().lower()} retrain of {where} failed after "
                f"{log.attempts} attempt(s). The current champion keeps serving.\n\n"
                f"{log.error}".strip()
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
        or log.trigger not in REVIEWED_TRIGGERS
        or version is None
        or version.status != ModelVersion.Status.CHALLENGER
    ):
        return None
    champion = get_champion_model(name=version.name, segment=version.segment)
    metadata = {
        "retrain_log_id": log.pk,
        "trigger": log.trigger,
        "challenger_version": version.version,
        "champion_version": champion.version if champion else "",
        **_numbers(log.trigger_metadata),
        **_evaluation_numbers(version.last_evaluation or {}),
    }
    change = metadata.get("mae_improvement_pct")
    headline = f" (MAE {-change:+.1f}%)" if isinstance(change, int | float) else ""
    verdict = (version.last_evaluation or {}).get("reason", "")
    because = "drift was detected" if log.trigger == "drift_detected" else "new products appeared"
    return raise_alert(
        alert_type=MLAlert.AlertType.PROMOTION_PENDING,
        severity=MLAlert.Severity.WARNING,
        title=f"Promotion pending: {version.name} {version.version} awaits review{headline}",
        message=(
            f"A retrain ran because {because} and produced {version.version} for {where}, "
            f"kept as challenger"
            + (f" beside champion {champion.version}" if champion else "")
            + ". Approve to make it champion, or dismiss it."
            + (f"\n\nThe arena's verdict: {verdict}" if verdict else "")
        ),
        metadata=metadata,
        model_version=version,
    )


def _numbers(values: dict | None) -> dict:
    """The scalar entries of a metadata dict (nested structures stay in their own records)."""
    return {
        key: value
        for key, value in (values or {}).items()
        if isinstance(value, str | int | float | bool) or value is None
    }


def _evaluation_numbers(evaluation: dict) -> dict:
    """Champion/challenger numbers of the registry's latest promotion decision, flattened."""
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
    }
    return {key: value for key, value in found.items() if isinstance(value, int | float)}


# --- Delivery -----------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    """What one delivery run did; `retry` lists recipients whose failure may pass,
    `undeliverable` those refused for good and marked so (the others are still served)."""

    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)
    undeliverable: list[str] = field(default_factory=list)
    channel_disabled: bool = False

    def as_dict(self) -> dict:
        return {
            "sent": self.sent,
            "failed": self.failed,
            "retry": self.retry,
            "undeliverable": self.undeliverable,
            "channel_disabled": self.channel_disabled,
        }


def channel(kind: str) -> NotificationChannel:
    """Return the tenant's channel of this kind, created enabled on first use."""
    found, _ = NotificationChannel.objects.get_or_create(kind=kind)
    return found


def deliver_alert_notifications(*, alert_id: int) -> DeliveryReport:
    """Deliver the alert over every enabled channel to each recipient not yet served; return what happened.

    Every attempt is a NotificationDelivery row. A recipient already sent to, or refused for good,
    is not tried again, so running this again (a retry) reaches only the rest. A recipient the
    server refuses for good (no such mailbox) is marked undeliverable and skipped from then on;
    the others are still served. When every recipient of a run meets a permanent error of the
    channel itself (the server refuses our messages), the channel is disabled with the reason.
    Not one transaction on purpose: each attempt's row must stay even if a later attempt fails.
    """
    report = DeliveryReport()
    alert = MLAlert.objects.select_related("model_version").filter(pk=alert_id).first()
    if alert is None:
        return report
    for kind in (NotificationChannel.Kind.IN_APP, NotificationChannel.Kind.EMAIL):
        _deliver_over(channel(kind), alert=alert, report=report)
    return report


def _carries(chan: NotificationChannel, alert: MLAlert) -> bool:
    # The inbox shows every alert; other channels carry open ones from their threshold up.
    if chan.kind == NotificationChannel.Kind.IN_APP:
        return True
    return (
        chan.enabled
        and alert.status not in CLOSED_STATUSES
        and SEVERITY_RANK[alert.severity] >= SEVERITY_RANK[chan.min_severity]
    )


def _served(chan: NotificationChannel, alert: MLAlert) -> tuple[set[str], dict[str, int]]:
    """Recipients this alert needs no more attempts for over `chan`, and attempts so far."""
    previous = NotificationDelivery.objects.filter(alert=alert, channel=chan)
    refused = previous.filter(permanent=True)
    if chan.enabled_since is not None:
        # Refusals from before a person re-enabled the channel are worth another try.
        refused = refused.filter(created_at__gte=chan.enabled_since)
    done = set(
        previous.filter(status=NotificationDelivery.Status.SENT).values_list("recipient", flat=True)
    ) | set(refused.values_list("recipient", flat=True))
    done |= set(chan.undeliverable.values_list("recipient", flat=True))
    attempts: dict[str, int] = {}
    for recipient in previous.values_list("recipient", flat=True):
        attempts[recipient] = attempts.get(recipient, 0) + 1
    return done, attempts


def _deliver_over(chan: NotificationChannel, *, alert: MLAlert, report: DeliveryReport) -> None:
    if not _carries(chan, alert):
        return
    transport = transport_for(chan)
    done, attempts = _served(chan, alert)
    channel_refusals, tried = [], 0
    for recipient in transport.recipients(alert):
        if recipient in done:
            continue
        tried += 1
        delivery = NotificationDelivery(
            alert=alert, channel=chan, recipient=recipient, attempt=attempts.get(recipient, 0) + 1
        )
        try:
            transport.notify(alert, recipient)
        except TransportError as exc:
            _record_failure(delivery, exc, report=report)
            if exc.permanent and not exc.recipient_refused:
                channel_refusals.append(exc.message)
            continue
        delivery.status = NotificationDelivery.Status.SENT
        delivery.save()
        report.sent.append(recipient)
    if tried and len(channel_refusals) == tried:
        disable_channel(channel=chan, reason=channel_refusals[0])
        report.channel_disabled = True


def _record_failure(
    delivery: NotificationDelivery, exc: TransportError, *, report: DeliveryReport
) -> None:
    delivery.status = NotificationDelivery.Status.FAILED
    delivery.error, delivery.permanent = exc.message, exc.permanent
    delivery.save()
    report.failed.append(delivery.recipient)
    if not exc.permanent:
        report.retry.append(delivery.recipient)
    elif exc.recipient_refused:
        mark_undeliverable(
            channel=delivery.channel,
            recipient=delivery.recipient,
            reason=exc.message,
            alert=delivery.alert,
        )
        report.undeliverable.append(delivery.recipient)
    logger.warning(
        "Alert %s over %s to %s failed (%s): %s",
        delivery.alert_id,
        delivery.channel.kind,
        delivery.recipient,
        "permanent" if exc.permanent else "transient",
        exc.message,
    )


def mark_undeliverable(
    *, channel: NotificationChannel, recipient: str, reason: str, alert: MLAlert | None = None
) -> UndeliverableRecipient:
    """Return the mark that `recipient` is refused for good over `channel` (made once)."""
    mark, created = UndeliverableRecipient.objects.get_or_create(
        channel=channel, recipient=recipient, defaults={"reason": reason, "alert": alert}
    )
    if created:
        logger.error("%s marked undeliverable over %s: %s", recipient, channel.kind, reason)
    return mark


def clear_undeliverable(*, marks, user) -> int:
    """Deliver again to the marked recipients (their address was fixed); returns how many
    marks were cleared. Raises PermissionDenied unless the user may change channels."""
    if not user.has_perm("alerts.change_notificationchannel"):
        raise PermissionDenied(f"{user} may not change notification channels.")
    cleared, _ = UndeliverableRecipient.objects.filter(pk__in=[m.pk for m in marks]).delete()
    return cleared


@transaction.atomic
def disable_channel(*, channel: NotificationChannel, reason: str) -> NotificationChannel:
    """Return the channel, disabled with the reason (a permanent delivery error); idempotent."""
    chan = NotificationChannel.objects.select_for_update().get(pk=channel.pk)
    if chan.enabled:
        chan.enabled = False
        chan.disabled_reason = reason
        chan.disabled_at = timezone.now()
        chan.save(update_fields=["enabled", "disabled_reason", "disabled_at"])
        logger.error("Notification channel %s disabled: %s", chan.kind, reason)
    return chan


@transaction.atomic
def enable_channel(*, channel: NotificationChannel, user) -> int:
    """Re-enable a channel and queue again the open alerts it failed or missed; return how many.

    Raises PermissionDenied unless the user may change notification channels.
    """
    if not user.has_perm("alerts.change_notificationchannel"):
        raise PermissionDenied(f"{user} may not change notification channels.")
    chan = NotificationChannel.objects.select_for_update().get(pk=channel.pk)
    missed = Q(deliveries__channel=chan, deliveries__status=NotificationDelivery.Status.FAILED)
    if chan.disabled_at is not None:
        missed |= Q(created_at__gte=chan.disabled_at)
    chan.enabled = True
    chan.enabled_since = timezone.now()
    chan.disabled_reason = ""
    chan.disabled_at = None
    chan.save(update_fields=["enabled", "enabled_since", "disabled_reason", "disabled_at"])
    ids = list(
        MLAlert.objects.filter(status__in=OPEN_STATUSES)
        .filter(missed)
        .values_list("pk", flat=True)
        .distinct()
    )
    for alert_id in ids:
        _queue_delivery(MLAlert(pk=alert_id))
    return len(ids)


def retry_countdown(retries: int) -> int:
    """Seconds before retry number `retries + 1` of a transient delivery failure (exponential)."""
    base = settings.ALERT_EMAIL_RETRY_BASE_SECONDS
    return int(base * 2**retries)
