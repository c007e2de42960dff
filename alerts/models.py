"""ML alerts (the in-app inbox) and the record of every notification delivery attempt."""

from django.conf import settings
from django.db import models
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from config.transitions import SYSTEM


class MLAlert(ConcurrentTransitionMixin, models.Model):
    class AlertType(models.TextChoices):
        DRIFT_DETECTED = "drift_detected", "Drift detected"
        PROMOTION_PENDING = "promotion_pending", "Promotion pending"
        BACKTEST_DEGRADATION = "backtest_degradation", "Backtest degradation"
        EXPERIMENT_COMPLETE = "experiment_complete", "Experiment complete"
        RETRAIN_FAILED = "retrain_failed", "Retrain failed"
        CANARY_ROLLED_BACK = "canary_rolled_back", "Canary rolled back"

    class Severity(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        CRITICAL = "critical", "Critical"

    class Status(models.TextChoices):
        UNREAD = "unread", "Unread"  # nobody has opened it yet
        READ = "read", "Read"  # seen; may still need a decision
        ACTIONED = "actioned", "Actioned"  # a person approved or acknowledged it; closed
        DISMISSED = "dismissed", "Dismissed"  # a person declined it; closed
        RESOLVED = "resolved", "Resolved"  # its cause went away before anyone acted; closed

    alert_type = models.CharField(max_length=30, choices=AlertType.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    title = models.CharField(max_length=300)
    message = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    status = FSMField(choices=Status.choices, default=Status.UNREAD, protected=True)
    action_url = models.CharField(max_length=500, blank=True)
    model_version = models.ForeignKey(
        "mlops.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="alerts",
    )
    experiment = models.ForeignKey(
        "experiments.ModelExperiment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="alerts",
    )
    dedup_key = models.CharField(max_length=200, help_text="One open alert per cause")
    occurrences = models.PositiveIntegerField(default=1)
    last_raised_at = models.DateTimeField(auto_now_add=True)
    read_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    read_at = models.DateTimeField(null=True, blank=True)
    actioned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actioned_at = models.DateTimeField(null=True, blank=True)
    action_taken = models.CharField(max_length=20, blank=True)
    action_note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "ML alert"
        verbose_name_plural = "ML alerts"
        permissions = [("act_on_mlalert", "Can approve or dismiss an ML alert")]
        constraints = [
            # One open (unread or read) alert per cause.
            models.UniqueConstraint(
                fields=["dedup_key"],
                condition=models.Q(status__in=["unread", "read"]),
                name="mlalert_one_open_per_cause",
            )
        ]
        indexes = [
            models.Index(fields=["status", "severity"], name="mlalert_status_severity_idx"),
            # The cooldown looks up the latest closed alert of a cause.
            models.Index(fields=["dedup_key", "-actioned_at"], name="mlalert_dedup_closed_idx"),
        ]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.title}"

    @property
    def requires_action(self) -> str:
        """yes / maybe / no, after the alert table of the specification."""
        return REQUIRES_ACTION[self.alert_type]

    @transition(field=status, source=Status.UNREAD, target=Status.READ)
    def mark_read(self):
        pass

    @transition(
        field=status,
        source=[Status.UNREAD, Status.READ],
        target=Status.ACTIONED,
        permission="alerts.act_on_mlalert",
    )
    def approve(self):
        self.action_taken = "approve"

    @transition(
        field=status,
        source=[Status.UNREAD, Status.READ],
        target=Status.DISMISSED,
        permission="alerts.act_on_mlalert",
    )
    def dismiss(self):
        self.action_taken = "dismiss"

    @transition(
        field=status, source=[Status.UNREAD, Status.READ], target=Status.RESOLVED, custom=SYSTEM
    )
    def resolve(self):
        """The system closes it: its drift incident ended or its challenger was decided."""
        self.action_taken = "resolved"


REQUIRES_ACTION = {
    MLAlert.AlertType.DRIFT_DETECTED: "yes",
    MLAlert.AlertType.PROMOTION_PENDING: "yes",
    MLAlert.AlertType.BACKTEST_DEGRADATION: "maybe",
    MLAlert.AlertType.EXPERIMENT_COMPLETE: "no",
    MLAlert.AlertType.RETRAIN_FAILED: "maybe",
    MLAlert.AlertType.CANARY_ROLLED_BACK: "maybe",
}


class NotificationChannel(models.Model):
    """A way alerts reach people (in-app, email); disabled by a permanent delivery error."""

    class Kind(models.TextChoices):
        IN_APP = "in_app", "In-app"
        EMAIL = "email", "Email"

    kind = models.CharField(max_length=10, choices=Kind.choices, unique=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.TextField(blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    enabled_since = models.DateTimeField(
        null=True, blank=True, help_text="When a person last re-enabled it"
    )
    min_severity = models.CharField(
        max_length=10, choices=MLAlert.Severity.choices, default=MLAlert.Severity.WARNING
    )

    def __str__(self) -> str:
        return self.get_kind_display() + ("" if self.enabled else " (disabled)")


class NotificationDelivery(models.Model):
    """One attempt to deliver one alert to one recipient over one channel."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    alert = models.ForeignKey(MLAlert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(
        NotificationChannel, on_delete=models.CASCADE, related_name="deliveries"
    )
    recipient = models.CharField(max_length=254)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempt = models.PositiveSmallIntegerField(default=1)
    error = models.TextField(blank=True)
    permanent = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "notification deliveries"
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.channel} → {self.recipient}: {self.status}"


class UndeliverableRecipient(models.Model):
    """An address a channel's server refused for good (no such mailbox): it is not tried again
    until a person clears it, and the channel keeps serving everyone else."""

    channel = models.ForeignKey(
        NotificationChannel, on_delete=models.CASCADE, related_name="undeliverable"
    )
    recipient = models.CharField(max_length=254)
    reason = models.TextField(help_text="The server's refusal")
    marked_at = models.DateTimeField(auto_now_add=True)
    alert = models.ForeignKey(
        MLAlert,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The alert whose delivery was refused",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "recipient"], name="one_undeliverable_mark_per_recipient"
            )
        ]
        ordering = ["-marked_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.recipient} (undeliverable over {self.channel.get_kind_display()})"


class NotificationPreference(models.Model):
    """A user's opt-in to emailed alerts (default: members of ml_manager)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_preference"
    )
    email_enabled = models.BooleanField(default=True)
    min_severity = models.CharField(
        max_length=10, choices=MLAlert.Severity.choices, default=MLAlert.Severity.WARNING
    )

    def __str__(self) -> str:
        return f"{self.user} email={'on' if self.email_enabled else 'off'} from {self.min_severity}"
