"""Human-led experiments: a hypothesis, its approval, the versions it trains, and the decision."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from config.transitions import SYSTEM
from mlops.models import DEFAULT_MODEL_NAME


class ModelExperiment(ConcurrentTransitionMixin, models.Model):
    class Status(models.TextChoices):
        PROPOSED = "proposed", "Proposed"  # waits for a manager's approval
        APPROVED = "approved", "Approved"  # may be started by a data scientist
        REJECTED = "rejected", "Rejected"  # a manager declined it; final
        IN_PROGRESS = "in_progress", "In progress"  # experimental versions are being trained
        SHADOW_TESTING = "shadow_testing", "Shadow testing"  # versions forecast beside the champion
        COMPLETED = "completed", "Completed"  # decided: adopt, partial adopt or reject; final

    class ExperimentType(models.TextChoices):
        FEATURE_ENGINEERING = "feature_engineering", "Feature engineering"
        SEGMENTATION = "segmentation", "Segmentation"
        ALGORITHM = "algorithm", "Algorithm"
        HYPERPARAMETERS = "hyperparameters", "Hyperparameters"
        TRAINING_WINDOW = "training_window", "Training window"

    class Decision(models.TextChoices):
        ADOPT = "adopt", "Adopt"
        PARTIAL_ADOPT = "partial_adopt", "Partial adopt"
        REJECT = "reject", "Reject"

    class Metric(models.TextChoices):
        MAE = "mae", "MAE"
        MAPE = "mape", "MAPE"
        WAPE = "wape", "WAPE"

    name = models.CharField(max_length=200)
    hypothesis = models.TextField()
    experiment_type = models.CharField(max_length=30, choices=ExperimentType.choices)
    model_name = models.CharField(max_length=64, default=DEFAULT_MODEL_NAME)
    configuration = models.JSONField(
        default=dict,
        blank=True,
        help_text="What the experiment changes (algorithm, hyperparameters, segments, window)",
    )
    success_metric = models.CharField(max_length=10, choices=Metric.choices, default=Metric.MAE)
    expected_improvement_pct = models.FloatField(default=5.0, validators=[MinValueValidator(0)])
    status = FSMField(choices=Status.choices, default=Status.PROPOSED, protected=True)

    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    review_note = models.TextField(blank=True, help_text="The manager's note on approval/rejection")
    results = models.JSONField(default=dict, blank=True)
    decision = models.CharField(max_length=20, choices=Decision.choices, blank=True)
    decision_rationale = models.TextField(blank=True)
    model_versions = models.ManyToManyField(
        "mlops.ModelVersion", blank=True, related_name="experiments"
    )

    created_at = models.DateTimeField(auto_now_add=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    rejected_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    shadow_started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [
            ("propose_modelexperiment", "Can propose an experiment"),
            ("approve_modelexperiment", "Can approve or reject an experiment"),
            ("run_modelexperiment", "Can start, shadow-test and complete an experiment"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"

    @transition(
        field=status,
        source=Status.PROPOSED,
        target=Status.APPROVED,
        permission="experiments.approve_modelexperiment",
    )
    def approve(self):
        pass

    @transition(
        field=status,
        source=Status.PROPOSED,
        target=Status.REJECTED,
        permission="experiments.approve_modelexperiment",
    )
    def reject(self):
        pass

    @transition(
        field=status,
        source=Status.APPROVED,
        target=Status.IN_PROGRESS,
        permission="experiments.run_modelexperiment",
    )
    def start(self):
        pass

    @transition(field=status, source=Status.IN_PROGRESS, target=Status.APPROVED, custom=SYSTEM)
    def training_failed(self):
        """Training of a version failed: the experiment may be started again (the system's move;
        the versions that did train stay linked and are not trained twice)."""

    @transition(
        field=status,
        source=Status.IN_PROGRESS,
        target=Status.SHADOW_TESTING,
        permission="experiments.run_modelexperiment",
    )
    def start_shadow_testing(self):
        pass

    @transition(
        field=status,
        source=Status.SHADOW_TESTING,
        target=Status.COMPLETED,
        permission="experiments.run_modelexperiment",
    )
    def complete(self):
        pass


class ExperimentEvent(models.Model):
    """Append-only record of every step of an experiment: who, when, from, to, and a note."""

    experiment = models.ForeignKey(ModelExperiment, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=20, blank=True, help_text="Empty for the proposal")
    to_status = models.CharField(max_length=20)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=150, help_text="Username, or 'system'")
    note = models.TextField(blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return (
            f"{self.experiment_id}: {self.from_status or '-'} → {self.to_status} "
            f"by {self.actor_label}"
        )

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValidationError("The experiment log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError("The experiment log is append-only.")


class ExperimentResults(models.Model):
    """The results of an open experiment as a worker last computed them (a request only reads
    them: computing refits both recipes when shadow days are few)."""

    experiment = models.OneToOneField(
        ModelExperiment, on_delete=models.CASCADE, related_name="computed_results"
    )
    results = models.JSONField(default=dict, blank=True)
    computed_at = models.DateTimeField(help_text="When the worker finished computing them")
    version_ids = models.JSONField(
        default=list, blank=True, help_text="The experiment's versions they cover"
    )

    class Meta:
        verbose_name_plural = "experiment results"

    def __str__(self) -> str:
        return f"Results of experiment {self.experiment_id} at {self.computed_at:%Y-%m-%d %H:%M}"
