"""Model registry: versions and their audited lifecycle, retrains and store routing."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django_fsm import ConcurrentTransitionMixin, FSMField, FSMModelMixin, transition

GLOBAL_SEGMENT = "global"
DEFAULT_MODEL_NAME = "demand_forecast"


def segment_label(name: str, segment: str) -> str:
    """How people read a model's place: `demand_forecast`, `demand_forecast [department:X]`."""
    return name if segment == GLOBAL_SEGMENT else f"{name} [{segment}]"


def validate_segment(value: str) -> None:
    from forecasting.demand_classes import DEMAND_CLASSES

    department = value.startswith("department:") and len(value) > 11
    demand_class = value.startswith("class:") and value[6:] in DEMAND_CLASSES
    if value != GLOBAL_SEGMENT and not department and not demand_class:
        raise ValidationError(
            f"Segment {value!r} must be 'global', 'department:<name>' or 'class:<demand class>' "
            f"({', '.join(DEMAND_CLASSES)})."
        )


def artifact_path(instance: "ModelVersion", filename: str) -> str:
    return f"models/{instance.name}/{instance.segment.replace(':', '_')}/{filename}"


class Trigger(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    MANUAL = "manual", "Manual"
    DRIFT_DETECTED = "drift_detected", "Drift detected"
    NEW_PRODUCTS = "new_products", "New products"
    EXPERIMENT = "experiment", "Experiment"


# Retrains whose result a person reviews: the system judges and recommends, a person promotes.
REVIEWED_TRIGGERS = (Trigger.DRIFT_DETECTED, Trigger.NEW_PRODUCTS, Trigger.EXPERIMENT)


class DecisionKind(models.TextChoices):
    """The three kinds of decision the arena makes about a model, named the same everywhere."""

    FIRST_MODEL = "first_model", "First model"  # nothing to beat: it serves
    REFRESH = "refresh", "Refresh"  # the champion's own recipe on fresher data
    RECIPE_CHANGE = "recipe_change", "Recipe change"  # another algorithm, settings, window, segment
    REVIEW = "review", "Review"  # a person decides (drift, new products, experiments)
    OVERRIDE = "override", "Override"  # a person promoted what the evidence did not support


class ModelVersion(ConcurrentTransitionMixin, models.Model):
    class Status(models.TextChoices):
        CANDIDATE = "candidate", "Candidate"  # trained and registered, not yet judged
        SHADOW = "shadow", "Shadow"  # forecasts logged beside the champion's, never served
        CHALLENGER = "challenger", "Challenger"  # judged worth serving; waits for promotion
        CHAMPION = "champion", "Champion"  # serves its name/segment (at most one)
        ARCHIVED = "archived", "Archived"  # retired: rejected, replaced or rolled back

    # Versions waiting for a decision: registered, not serving, not retired. The daily
    # forecast gives them forecasts beside the champion's and the daily judging weighs them.
    AWAITING_DECISION = (Status.CANDIDATE, Status.SHADOW, Status.CHALLENGER)

    class RoutingMode(models.TextChoices):
        NONE = "none", "None"
        SHADOW = "shadow", "Shadow"
        CANARY = "canary", "Canary"

    name = models.CharField(max_length=64, default=DEFAULT_MODEL_NAME)
    version = models.CharField(max_length=32, help_text="v1, v2, ... per model name")
    version_number = models.PositiveIntegerField()
    segment = models.CharField(
        max_length=120, default=GLOBAL_SEGMENT, validators=[validate_segment]
    )
    algorithm = models.CharField(max_length=32)
    status = FSMField(choices=Status.choices, default=Status.CANDIDATE, protected=True)
    routing_mode = models.CharField(
        max_length=10, choices=RoutingMode.choices, default=RoutingMode.NONE
    )
    canary_weight = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    metrics = models.JSONField(default=dict, blank=True, help_text="Held-out metrics at training")
    importance = models.JSONField(
        default=dict,
        blank=True,
        help_text="Global feature importance measured at training: permutation importance on "
        "held-out days, and mean |contribution| for families with exact contributions",
    )

    artifact = models.FileField(upload_to=artifact_path, blank=True, max_length=255)
    artifact_sha256 = models.CharField(max_length=64, blank=True)
    library_versions = models.JSONField(default=dict, blank=True)
    features = models.JSONField(default=list, blank=True)
    hyperparameters = models.JSONField(default=dict, blank=True)
    training_start = models.DateField(null=True, blank=True)
    training_end = models.DateField(null=True, blank=True)
    training_rows = models.PositiveBigIntegerField(default=0)
    window_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="The recipe's training window (days before the cutoff)"
    )

    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.MANUAL)
    decision_kind = models.CharField(
        max_length=20,
        choices=DecisionKind.choices,
        blank=True,
        help_text="The kind of decision that judged it last (refresh, recipe change, review)",
    )
    waiting_for = models.CharField(
        max_length=300, blank=True, help_text="Who or what a waiting version waits on"
    )
    monitoring_since = models.DateField(
        null=True,
        blank=True,
        help_text="Drift monitoring compares days after this with its first scored days after "
        "it (a dismissed drift re-baselines here); empty: since training",
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    last_evaluation = models.JSONField(
        default=dict, blank=True, help_text="The latest promotion decision with all its numbers"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    promoted_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "segment", "-version_number"]
        permissions = [
            ("promote_modelversion", "Can promote a model version to champion"),
            ("reject_modelversion", "Can reject a model version"),
            ("rollback_modelversion", "Can roll back to the previous champion"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="modelversion_unique_label"),
            models.UniqueConstraint(
                fields=["name", "version_number"], name="modelversion_unique_number"
            ),
            # At most one champion per name and segment (the promotion service also locks).
            models.UniqueConstraint(
                fields=["name", "segment"],
                condition=models.Q(status="champion"),
                name="modelversion_one_champion_per_segment",
            ),
            models.CheckConstraint(
                condition=models.Q(canary_weight__gte=0) & models.Q(canary_weight__lte=1),
                name="modelversion_canary_weight_0_1",
            ),
        ]
        indexes = [
            models.Index(fields=["name", "segment", "status"], name="modelversion_group_idx")
        ]

    def __str__(self) -> str:
        suffix = "" if self.segment == GLOBAL_SEGMENT else f" [{self.segment}]"
        return f"{self.name} {self.version}{suffix} ({self.status})"

    @property
    def where(self) -> str:
        return segment_label(self.name, self.segment)

    @property
    def recipe_window_days(self) -> int | None:
        """Days of sales its recipe trains on: as recorded, else what it was trained on."""
        if self.window_days:
            return self.window_days
        if self.training_start and self.training_end:
            return (self.training_end - self.training_start).days + 1
        return None

    # Transitions change database fields only; services record them and do side effects.
    @transition(field=status, source=Status.CANDIDATE, target=Status.SHADOW)
    def start_shadow(self):
        self.routing_mode = self.RoutingMode.SHADOW

    @transition(field=status, source=[Status.CANDIDATE, Status.SHADOW], target=Status.CHALLENGER)
    def make_challenger(self):
        pass

    @transition(
        field=status,
        source=[Status.CANDIDATE, Status.SHADOW, Status.CHALLENGER],
        target=Status.CHAMPION,
        permission="mlops.promote_modelversion",
    )
    def promote(self):
        self.routing_mode = self.RoutingMode.NONE
        self.canary_weight = 0.0

    @transition(
        field=status,
        source=[Status.CANDIDATE, Status.SHADOW, Status.CHALLENGER],
        target=Status.ARCHIVED,
        permission="mlops.reject_modelversion",
    )
    def reject(self):
        self.routing_mode = self.RoutingMode.NONE

    @transition(field=status, source=Status.CHAMPION, target=Status.ARCHIVED)
    def retire(self):
        """The champion is replaced by a newer one (or rolled back)."""

    @transition(
        field=status,
        source=Status.ARCHIVED,
        target=Status.CHAMPION,
        permission="mlops.rollback_modelversion",
    )
    def restore(self):
        """A former champion serves again (rollback)."""
        self.routing_mode = self.RoutingMode.NONE


class ModelTransition(models.Model):
    """Append-only record of every status change: who, when, from, to, why, and the evidence."""

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="transitions"
    )
    from_status = models.CharField(max_length=20)
    to_status = models.CharField(max_length=20)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_label = models.CharField(max_length=150, help_text="Username, or 'system'")
    reason = models.TextField(blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.model_version} {self.from_status} → {self.to_status} by {self.actor_label}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValidationError("The transition log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError("The transition log is append-only.")


class ModelRetrainingLog(FSMModelMixin, models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"  # requested; a worker will pick it up
        RUNNING = "running", "Running"  # a worker trains or judges it now (or died doing so)
        SUCCEEDED = "succeeded", "Succeeded"  # a version was registered and decided; final
        FAILED = "failed", "Failed"  # nothing was registered; the error says why; final

    PENDING = (Status.QUEUED, Status.RUNNING)
    FINISHED = (Status.SUCCEEDED, Status.FAILED)

    class Outcome(models.TextChoices):
        PROMOTED = "promoted", "Promoted"
        FIRST = "champion (first)", "Champion (first model)"
        CHALLENGER = "challenger", "Challenger"
        ARCHIVED = "archived", "Archived"

    name = models.CharField(max_length=64, default=DEFAULT_MODEL_NAME)
    segment = models.CharField(max_length=120, default=GLOBAL_SEGMENT)
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    trigger_metadata = models.JSONField(default=dict, blank=True)
    status = FSMField(choices=Status.choices, default=Status.QUEUED, protected=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    rows = models.PositiveBigIntegerField(default=0)
    data_start = models.DateField(null=True, blank=True)
    data_end = models.DateField(null=True, blank=True)
    resulting_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    outcome = models.CharField(
        max_length=40,
        blank=True,
        choices=Outcome.choices,
        help_text="promoted / challenger / archived / champion (first)",
    )
    decision_kind = models.CharField(max_length=20, choices=DecisionKind.choices, blank=True)
    decision = models.JSONField(
        default=dict, blank=True, help_text="The decision on the result: kind, outcome, reasons"
    )
    error = models.TextField(blank=True)
    # The recipe and the trained artifact live on the log too, so a retrain that fails after
    # training keeps what it trained even though no version was registered.
    algorithm = models.CharField(max_length=32, blank=True)
    hyperparameters = models.JSONField(default=dict, blank=True)
    window_days = models.PositiveIntegerField(null=True, blank=True)
    artifact = models.FileField(upload_to=artifact_path, blank=True, max_length=255)
    artifact_sha256 = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [
            ("request_retrain", "Can request a retrain"),
            ("manage_schedules", "Can view, edit and run the tenant's schedules"),
        ]

    def __str__(self) -> str:
        return f"Retrain {self.name}/{self.segment} ({self.trigger}) {self.status}"

    @transition(field=status, source=[Status.QUEUED, Status.RUNNING], target=Status.RUNNING)
    def start(self):
        """A worker begins an attempt (again, after a worker died mid-attempt)."""

    @transition(field=status, source=Status.RUNNING, target=Status.SUCCEEDED)
    def succeed(self):
        pass

    @transition(field=status, source=[Status.QUEUED, Status.RUNNING], target=Status.FAILED)
    def fail(self):
        pass


class RoutingOverride(models.Model):
    """Pins one store's traffic for a model name to a chosen version (a store-segment rollout)."""

    name = models.CharField(max_length=64, default=DEFAULT_MODEL_NAME)
    store = models.ForeignKey("forecasting.Store", on_delete=models.CASCADE, related_name="+")
    version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="routing_overrides"
    )
    reason = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "store"]
        constraints = [
            models.UniqueConstraint(fields=["name", "store"], name="routingoverride_one_per_store")
        ]

    def __str__(self) -> str:
        return f"{self.name}: store {self.store_id} → {self.version_id}"
