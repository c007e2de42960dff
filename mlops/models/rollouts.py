"""Canary rollouts: a plan of growing shares of series, each baked for some days under business
guardrails against the champion, ending in promotion or automatic rollback."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from config.transitions import SYSTEM
from mlops.models.registry import DEFAULT_MODEL_NAME, GLOBAL_SEGMENT, ModelVersion, segment_label

SERVE_PERMISSION = "mlops.promote_modelversion"

# The business guardrails a plan may hold, each judged against the champion on the same series
# and days; "worse" is the direction that hurts (see mlops.services.rollout_guardrails).
GUARDRAIL_METRICS = (
    "wape",
    "bias",
    "stockout_miss_rate",
    "overstock_rate",
    "interval_coverage",
)


class RolloutPlan(ConcurrentTransitionMixin, models.Model):
    """One canary of one version: the shares of its series step by step, the days each step
    bakes, the guardrails it must hold, and where it stands."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"  # the canary serves its step's series; judged daily
        PAUSED = "paused", "Paused"  # holds its step (still served, still guarded); no advance
        PROMOTED = "promoted", "Promoted"  # the last step baked: the version is champion; final
        ROLLED_BACK = "rolled_back", "Rolled back"  # a guardrail breached: champion serves; final
        ABORTED = "aborted", "Aborted"  # a person stopped it: champion serves; final

    ACTIVE = (Status.RUNNING, Status.PAUSED)

    name = models.CharField(max_length=64, default=DEFAULT_MODEL_NAME)
    segment = models.CharField(max_length=120, default=GLOBAL_SEGMENT)
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="rollouts")
    champion = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The champion serving its series when the plan started",
    )
    status = FSMField(choices=Status.choices, default=Status.RUNNING, protected=True)
    shares = models.JSONField(help_text="Share of series per step, increasing, the last <= 1")
    bake_days = models.PositiveSmallIntegerField(help_text="Judged days each step must pass")
    guardrails = models.JSONField(help_text='[{"metric": "wape", "tolerance": 5.0}, ...]')
    confidence = models.FloatField(help_text="Confidence a paired test needs to call a breach")
    step = models.PositiveSmallIntegerField(default=0, help_text="Index of the current share")
    step_started_on = models.DateField(help_text="Days after this one count towards the bake")
    days_baked = models.PositiveSmallIntegerField(default=0)
    started_on = models.DateField()
    last_evaluated_on = models.DateField(
        null=True, blank=True, help_text="The latest T-1 day judged (each day is judged once)"
    )
    latest = models.JSONField(default=dict, blank=True, help_text="The last judgement's numbers")
    ended_on = models.DateField(null=True, blank=True)
    outcome_reason = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["name", "segment"],
                condition=models.Q(status__in=["running", "paused"]),
                name="rolloutplan_one_active_per_segment",
            )
        ]

    def __str__(self) -> str:
        return f"Canary of {self.version.version} in {segment_label(self.name, self.segment)}"

    @property
    def share(self) -> float:
        return float(self.shares[self.step])

    @property
    def is_last_step(self) -> bool:
        return self.step >= len(self.shares) - 1

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    # Transitions change database fields only; mlops.services.rollouts records and routes.
    @transition(
        field=status, source=Status.RUNNING, target=Status.PAUSED, permission=SERVE_PERMISSION
    )
    def pause(self):
        pass

    @transition(
        field=status, source=Status.PAUSED, target=Status.RUNNING, permission=SERVE_PERMISSION
    )
    def resume(self):
        pass

    @transition(
        field=status, source=Status.RUNNING, target=Status.RUNNING, permission=SERVE_PERMISSION
    )
    def advance(self):
        """The next step: a baked step (the system) or a person's skip."""
        self.step += 1
        self.days_baked = 0

    @transition(
        field=status, source=Status.RUNNING, target=Status.PROMOTED, permission=SERVE_PERMISSION
    )
    def complete(self):
        """The last step baked (or a person skipped past it): the version was promoted."""

    @transition(field=status, source=ACTIVE, target=Status.ROLLED_BACK, custom=SYSTEM)
    def roll_back(self):
        """A guardrail breached: only the system rolls back, with the numbers."""

    @transition(field=status, source=ACTIVE, target=Status.ABORTED, permission=SERVE_PERMISSION)
    def abort(self):
        pass


def validate_plan(*, shares: list, bake_days: int, guardrails: list) -> None:
    """Raise ValidationError (per field) unless the shares grow within (0, 1], each step bakes
    at least a day, and each guardrail names a known metric with a tolerance >= 0."""
    errors: dict[str, list[str]] = {}
    if not shares or any(not isinstance(s, int | float) or not 0 < s <= 1 for s in shares):
        errors["steps"] = ["Every share must be in (0, 1]."]
    elif any(later <= earlier for earlier, later in zip(shares, shares[1:], strict=False)):
        errors["steps"] = ["Each step's share must be larger than the one before."]
    if bake_days < 1:
        errors["bake_days"] = ["Each step bakes at least one day."]
    seen = set()
    for rule in guardrails:
        metric = rule.get("metric")
        if metric not in GUARDRAIL_METRICS:
            errors["guardrails"] = [f"Unknown guardrail metric {metric!r}."]
        elif metric in seen:
            errors["guardrails"] = [f"Guardrail {metric!r} is given twice."]
        elif not isinstance(rule.get("tolerance"), int | float) or rule["tolerance"] < 0:
            errors["guardrails"] = [f"Guardrail {metric!r} needs a tolerance >= 0."]
        seen.add(metric)
    if errors:
        raise ValidationError(errors)


class RolloutSeries(models.Model):
    """A series in a plan's canary: sticky from the step that added it until the plan ends."""

    plan = models.ForeignKey(RolloutPlan, on_delete=models.CASCADE, related_name="series")
    store = models.ForeignKey("forecasting.Store", on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey("forecasting.Product", on_delete=models.CASCADE, related_name="+")
    department = models.CharField(max_length=100)
    demand_class = models.CharField(max_length=20)
    added_at_step = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["plan", "added_at_step", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "store", "product"], name="rolloutseries_once_per_plan"
            )
        ]

    def __str__(self) -> str:
        return f"{self.plan_id}: {self.store_id}/{self.product_id} from step {self.added_at_step}"


class RolloutEvent(models.Model):
    """Append-only record of a plan: every move and every daily judgement, with who, why and
    the numbers."""

    class Kind(models.TextChoices):
        STARTED = "started", "Started"
        JUDGED = "judged", "Judged (baking)"
        ADVANCED = "advanced", "Next step"
        PROMOTED = "promoted", "Promoted"
        ROLLED_BACK = "rolled_back", "Rolled back"
        PAUSED = "paused", "Paused"
        RESUMED = "resumed", "Resumed"
        ABORTED = "aborted", "Aborted"
        SKIPPED = "skipped", "Skipped to the next step"

    plan = models.ForeignKey(RolloutPlan, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    from_status = models.CharField(max_length=20)
    to_status = models.CharField(max_length=20)
    step = models.PositiveSmallIntegerField()
    share = models.FloatField()
    day = models.DateField(null=True, blank=True, help_text="The T-1 day judged, if any")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_label = models.CharField(max_length=150, help_text="Username, or 'system'")
    reason = models.TextField(blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            # The daily job judges a plan's day once, whatever the deliveries.
            models.UniqueConstraint(
                fields=["plan", "day"],
                condition=models.Q(day__isnull=False),
                name="rolloutevent_one_judgement_per_day",
            )
        ]

    def __str__(self) -> str:
        return f"{self.plan_id}: {self.kind} by {self.actor_label}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValidationError("The rollout log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError("The rollout log is append-only.")
