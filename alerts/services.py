"""Writes of the alert inbox: raise (deduplicated), read, approve/acknowledge/dismiss, resolve,
and deliver notifications."""

import contextvars
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django_fsm import has_transition_perm

from alerts.channels import TransportError, transport_for
from alerts.models import MLAlert, NotificationChannel, NotificationDelivery, UndeliverableRecipient
from alerts.registry import actions_for
from alerts.selectors import CLOSED_STATUSES, OPEN_STATUSES, SEVERITY_RANK
from config.transitions import apply_transition, ensure_can, locked

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
    MLAlert.AlertType.CANARY_ROLLED_BACK: 0,  # keyed per plan: each rollback is news
}

# approve: do what the alert proposes; acknowledge: close it as seen and handled, changing
# nothing else; dismiss: close it as not wanted (its owner may act on that too).
ACTIONS = ("approve", "acknowledge", "dismiss")
# The alert a person is acting on while its owner's handler runs (the handler's own
# consequences, such as a drift incident closing, must not close it under them).
_acting_on: contextvars.ContextVar[int | None] = contextvars.ContextVar("acting_on", default=None)


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


@transaction.atomic
def rewrite_alert(
    *, alert: MLAlert, title: str, message: str, metadata: dict, model_version=None
) -> MLAlert:
    """Rewrite an open alert in place with what its owner now knows (a new challenger, a
    verdict): not a repeat of its cause, so nobody is notified and nothing is counted. A closed
    alert is left as it is; returns the alert."""
    alert = locked(alert)
    if alert.status not in OPEN_STATUSES:
        return alert
    alert.title, alert.message, alert.metadata = title[:300], message, metadata
    if model_version is not None:
        alert.model_version = model_version
    alert.save(update_fields=["title", "message", "metadata", "model_version"])
    return alert


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
    """Return the alert approved, acknowledged or dismissed by `user`, with what that did.

    What approving or dismissing does beyond closing the alert is the business of the app that
    owns its type (`alerts.registry`): approving a drift or promotion alert promotes its
    challenger; dismissing one may archive it or snooze its drift. Raises ValueError (unknown
    action), PermissionDenied (the user may not act, or may not do what the handler does),
    TransitionNotAllowed (alert already closed, or what it is about cannot move); a refusal
    changes nothing.
    """
    if action not in ACTIONS:
        raise ValueError(f"Unknown action {action!r}; use one of {', '.join(ACTIONS)}")
    alert = locked(alert)
    method = "dismiss" if action == "dismiss" else "approve"
    ensure_can(alert, method, action=action, describe=f"alert #{alert.pk}")
    if not has_transition_perm(getattr(alert, method), user):
        raise PermissionDenied(f"{user} may not {action} ML alerts.")
    handlers = actions_for(alert.alert_type)
    handler = {"approve": handlers.approve, "dismiss": handlers.dismiss}.get(action)
    token = _acting_on.set(alert.pk)
    try:
        decision = handler(alert=alert, user=user, note=note) if handler else None
    finally:
        _acting_on.reset(token)
    now = timezone.now()
    fields = {"actioned_by": user, "actioned_at": now, "action_note": note}
    if alert.read_at is None:
        fields.update(read_by=user, read_at=now)
    if decision is not None:
        fields["metadata"] = {**alert.metadata, "decision": decision}
    if action == "acknowledge":
        fields["action_taken"] = "acknowledge"
    return apply_transition(
        alert, method, actor=user, action=action, describe=f"alert #{alert.pk}", **fields
    )


@transaction.atomic
def resolve_alert(*, alert: MLAlert, note: str) -> MLAlert:
    """Close an open alert whose cause is gone (the system's move: its drift incident closed,
    its challenger was decided elsewhere), saying why; a closed alert is left as it is."""
    if alert.pk == _acting_on.get():
        return alert  # a person is closing it right now; their action says what happened
    alert = locked(alert)
    if alert.status not in OPEN_STATUSES:
        return alert
    return apply_transition(
        alert,
        "resolve",
        actor=None,
        action="resolve",
        describe=f"alert #{alert.pk}",
        action_note=note,
        actioned_at=timezone.now(),
    )


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
