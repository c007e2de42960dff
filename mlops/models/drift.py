"""Drift incidents: one per drifting champion, from the first rule that fires to its resolution."""

from django.conf import settings
from django.db import models
from django_fsm import FSMField, FSMModelMixin, transition

from mlops.models.registry import (
    DEFAULT_MODEL_NAME,
    GLOBAL_SEGMENT,
    ModelRetrainingLog,
    ModelVersion,
    segment_label,
)


class DriftIncident(FSMModelMixin, models.Model):
    """One drift of one champion: opened when a rule first fires, kept (one alert, one email)
    until a new champion, a person's dismissal or recovery resolves it."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"  # the champion drifted; judging uses days after the change
        RESOLVED = "resolved", "Resolved"  # closed; the resolution says how

    class Resolution(models.TextChoices):
        NEW_CHAMPION = "new_champion", "New champion"  # another version serves the segment
        DISMISSED = "dismissed", "Dismissed"  # a person accepted the level; re-baselined, snoozed
        RECOVERED = "recovered", "Recovered"  # the rules stayed quiet for a week

    name = models.CharField(max_length=64, default=DEFAULT_MODEL_NAME)
    segment = models.CharField(max_length=120, default=GLOBAL_SEGMENT)
    champion = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="incidents")
    status = FSMField(choices=Status.choices, default=Status.OPEN, protected=True)
    change_date = models.DateField(help_text="First day the rules saw the shift")
    opened_on = models.DateField(help_text="The T-1 day on which drift was found")
    last_checked_on = models.DateField()
    rules = models.JSONField(default=list, help_text="Rules that fired when it opened")
    detection = models.JSONField(default=dict, help_text="The numbers when it opened")
    latest = models.JSONField(default=dict, blank=True, help_text="The numbers of the last check")
    quiet_days = models.PositiveSmallIntegerField(
        default=0, help_text="Consecutive checks on which no rule fired"
    )
    alert = models.ForeignKey(
        "alerts.MLAlert", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    retrain_log = models.ForeignKey(
        ModelRetrainingLog, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    challenger = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="drift_incidents_answered",
        help_text="The version trained for this incident",
    )
    root_cause = models.JSONField(default=dict, blank=True)
    resolution = models.CharField(max_length=20, choices=Resolution.choices, blank=True)
    resolved_on = models.DateField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution_note = models.TextField(blank=True)
    snoozed_until = models.DateField(
        null=True, blank=True, help_text="After a dismissal: no new incident before this day"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-opened_on", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["name", "segment"],
                condition=models.Q(status="open"),
                name="driftincident_one_open_per_segment",
            )
        ]

    def __str__(self) -> str:
        return f"Drift of {segment_label(self.name, self.segment)} from {self.change_date}"

    @property
    def where(self) -> str:
        return segment_label(self.name, self.segment)

    @transition(field=status, source=Status.OPEN, target=Status.RESOLVED)
    def resolve(self):
        pass
