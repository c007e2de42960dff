"""JSON shapes of experiments (the spec's example experiment) and of the steps that move them."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.api import RelatedLabelField, RelatedLabelsField
from config.api_input import TextField
from experiments.models import ExperimentEvent, ModelExperiment
from experiments.selectors import experiment_events
from experiments.services import allowed_moves
from mlops.models import DEFAULT_MODEL_NAME


class ExperimentEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label", read_only=True)
    evidence = serializers.DictField(read_only=True)

    class Meta:
        model = ExperimentEvent
        fields = ["id", "from_status", "to_status", "actor", "note", "evidence", "created_at"]
        read_only_fields = fields


class ExperimentSerializer(serializers.ModelSerializer):
    experiment_id = serializers.IntegerField(source="pk", read_only=True)
    experiment_name = serializers.CharField(source="name", read_only=True)
    proposed_by = RelatedLabelField(
        annotation="proposed_by_username", source="proposed_by.username"
    )
    approved_by = RelatedLabelField(
        annotation="approved_by_username", source="approved_by.username"
    )
    completed_by = RelatedLabelField(
        annotation="completed_by_username", source="completed_by.username"
    )
    configuration = serializers.DictField(read_only=True)
    results = serializers.DictField(
        read_only=True, help_text="Computed by the system when the experiment is completed"
    )
    model_versions = RelatedLabelsField(
        annotation="version_labels", label_attribute="version", help_text="Versions it trained"
    )
    decision = serializers.ChoiceField(
        choices=ModelExperiment.Decision.choices,
        allow_blank=True,
        read_only=True,
        help_text="Empty until the experiment is completed",
    )
    allowed_transitions = serializers.SerializerMethodField()

    class Meta:
        model = ModelExperiment
        fields = [
            "experiment_id",
            "experiment_name",
            "hypothesis",
            "experiment_type",
            "model_name",
            "configuration",
            "success_metric",
            "expected_improvement_pct",
            "status",
            "allowed_transitions",
            "proposed_by",
            "approved_by",
            "review_note",
            "model_versions",
            "results",
            "decision",
            "decision_rationale",
            "completed_by",
            "created_at",
            "approved_at",
            "rejected_at",
            "started_at",
            "shadow_started_at",
            "completed_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_allowed_transitions(self, experiment: ModelExperiment) -> list[str]:
        return allowed_moves(experiment)


class ExperimentDetailSerializer(ExperimentSerializer):
    events = serializers.SerializerMethodField()

    class Meta(ExperimentSerializer.Meta):
        fields = [*ExperimentSerializer.Meta.fields, "events"]
        read_only_fields = fields

    @extend_schema_field(ExperimentEventSerializer(many=True))
    def get_events(self, experiment: ModelExperiment) -> list[dict]:
        return ExperimentEventSerializer(experiment_events(experiment=experiment), many=True).data


class ProposeExperimentSerializer(serializers.Serializer):
    """The spec's example body; `proposed_by` is not read (the proposer is the signed-in user)."""

    experiment_name = TextField(max_length=200)
    hypothesis = TextField()
    experiment_type = serializers.ChoiceField(choices=ModelExperiment.ExperimentType.choices)
    configuration = serializers.DictField(
        required=False,
        default=dict,
        help_text="What the experiment changes: segments (segmentation), algorithm, "
        "hyperparameters, window_days (training_window), features (feature_engineering)",
    )
    success_metric = serializers.ChoiceField(
        choices=ModelExperiment.Metric.choices, default=ModelExperiment.Metric.MAE
    )
    expected_improvement_pct = serializers.FloatField(default=5.0, min_value=0, max_value=100)
    model_name = TextField(max_length=64, default=DEFAULT_MODEL_NAME)


class NoteSerializer(serializers.Serializer):
    note = TextField(required=False, allow_blank=True, default="", max_length=5000)


class RejectSerializer(serializers.Serializer):
    note = TextField(max_length=5000, help_text="Why it is rejected (required)")


class CompleteExperimentSerializer(serializers.Serializer):
    """`results` sent by a client are not read: results are computed by the system."""

    decision = serializers.ChoiceField(choices=ModelExperiment.Decision.choices)
    decision_rationale = TextField(max_length=5000)
    adopted_versions = serializers.ListField(
        child=TextField(max_length=32),
        required=False,
        help_text="Version labels (e.g. v14) that partial_adopt adopts",
    )
    override_reason = serializers.CharField(
        max_length=5000,
        required=False,
        default="",
        help_text="Adopting a version that does not pass the gate (the success criterion, the "
        "tenant's confidence, its minimum of shadow days) is an override: a manager says why here",
    )
