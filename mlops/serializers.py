"""JSON shapes of the model registry API: versions, transitions, health, backtests, retrains."""

from rest_framework import serializers

from config.api import RelatedLabelField
from config.api_input import TextField
from forecasting.families import FAMILIES
from forecasting.serializers import FiniteFloatField
from mlops.models import (
    DEFAULT_MODEL_NAME,
    GLOBAL_SEGMENT,
    DecisionKind,
    DriftIncident,
    ModelRetrainingLog,
    ModelTransition,
    ModelVersion,
    validate_segment,
)
from mlops.rollout_serializers import RolloutSummarySerializer


class ModelTransitionSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label", read_only=True)
    evidence = serializers.DictField(read_only=True)

    class Meta:
        model = ModelTransition
        fields = ["id", "from_status", "to_status", "actor", "reason", "evidence", "created_at"]
        read_only_fields = fields


class ModelVersionSerializer(serializers.ModelSerializer):
    parent = RelatedLabelField(annotation="parent_label", source="parent.version")
    created_by = RelatedLabelField(annotation="created_by_username", source="created_by.username")
    metrics = serializers.DictField(read_only=True)
    hyperparameters = serializers.DictField(read_only=True)
    library_versions = serializers.DictField(read_only=True)
    features = serializers.ListField(child=serializers.CharField(), read_only=True)
    last_evaluation = serializers.DictField(read_only=True)
    decision_kind = serializers.ChoiceField(
        choices=[("", "Not decided yet"), *DecisionKind.choices],
        read_only=True,
        help_text="The kind of decision that judged it last",
    )

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "name",
            "version",
            "segment",
            "algorithm",
            "status",
            "routing_mode",
            "canary_weight",
            "metrics",
            "trigger",
            "parent",
            "created_by",
            "hyperparameters",
            "features",
            "library_versions",
            "artifact_sha256",
            "training_start",
            "training_end",
            "training_rows",
            "window_days",
            "last_evaluation",
            "decision_kind",
            "waiting_for",
            "created_at",
            "promoted_at",
            "archived_at",
        ]
        read_only_fields = fields


class ModelVersionHistorySerializer(ModelVersionSerializer):
    # Oldest first: selectors.model_history prefetches them in that order. A nested field is
    # built once per list, not once per version.
    transitions = ModelTransitionSerializer(many=True, read_only=True, source="transitions.all")

    class Meta(ModelVersionSerializer.Meta):
        fields = [*ModelVersionSerializer.Meta.fields, "transitions"]
        read_only_fields = fields


class IncidentBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    change_date = serializers.DateField()
    opened_on = serializers.DateField()
    rules = serializers.ListField(child=serializers.CharField())
    alert_id = serializers.IntegerField(allow_null=True)
    challenger = serializers.CharField(
        allow_null=True, help_text="The version trained for the incident"
    )
    as_of = serializers.DateField(allow_null=True, help_text="The day its last check read up to")
    headline = serializers.CharField(
        help_text="What its last check saw, in words (as its alert's title says it)"
    )
    recent_mae = FiniteFloatField(
        allow_null=True,
        help_text="MAE of the forecasts served over the last check's recent days (the "
        "champion's lineage: the versions its refreshes replaced included)",
    )
    baseline_mae = FiniteFloatField(
        allow_null=True,
        help_text="The baseline the drift rules compare with: the MAE the lineage began with",
    )


class RetailHealthSerializer(serializers.Serializer):
    """The retail pack of a version's T-1 days in the week up to `as_of` (docs/METRICS.md)."""

    fva_pct_7d = FiniteFloatField(
        allow_null=True,
        help_text="% by which its MAE beats the 7-day seasonal naive's (negative: worse)",
    )
    mase_7d = FiniteFloatField(allow_null=True, help_text="MAE over in-sample naive MAE")
    rmsse_7d = FiniteFloatField(allow_null=True, help_text="RMSE over in-sample naive RMSE")
    wql_7d = FiniteFloatField(allow_null=True, help_text="Weighted quantile loss (0.1, 0.5, 0.9)")
    tracking_signal_7d = FiniteFloatField(
        allow_null=True,
        help_text="Cumulative (actual - forecast) / MAD over the week up to `as_of`, mean over "
        "series; outside +-4 the errors lean one way (positive: under-forecast)",
    )


class ChampionHealthSerializer(RetailHealthSerializer):
    id = serializers.IntegerField()
    version = serializers.CharField(help_text="e.g. v12")
    algorithm = serializers.CharField()
    status = serializers.ChoiceField(
        choices=["healthy", "degraded", "drifting", "unknown"],
        help_text="Recent T-1 error against the error it was promoted on",
    )
    mae_7d = serializers.FloatField(allow_null=True)
    mae_30d = serializers.FloatField(allow_null=True)
    baseline_mae = serializers.FloatField(allow_null=True)
    trend = serializers.ChoiceField(choices=["improving", "stable", "degrading"], allow_null=True)
    as_of = serializers.DateField(allow_null=True, help_text="Last day with a T-1 result")
    promoted_at = serializers.DateTimeField(allow_null=True)
    decision_kind = serializers.ChoiceField(
        choices=DecisionKind.choices,
        allow_null=True,
        help_text="The kind of decision that made it champion",
    )
    age_days = serializers.IntegerField(
        allow_null=True, help_text="Days from the end of its training data to `as_of`"
    )
    incident = IncidentBriefSerializer(
        allow_null=True, help_text="Its open drift incident (then `status` is drifting)"
    )


class ChallengerHealthSerializer(RetailHealthSerializer):
    id = serializers.IntegerField()
    version = serializers.CharField()
    algorithm = serializers.CharField()
    status = serializers.ChoiceField(choices=["shadow_testing", "canary", "waiting_for_review"])
    mae_7d = serializers.FloatField(allow_null=True)
    promotion_eligible = serializers.BooleanField()
    confidence = serializers.FloatField(
        allow_null=True, help_text="Confidence of the paired test that it beats the champion"
    )
    evaluation_reason = serializers.CharField(allow_null=True)
    evaluated_at = serializers.CharField(allow_null=True)
    evidence_source = serializers.CharField(
        allow_null=True,
        help_text="shadow: the daily judging on stored forecasts; walk_forward: refits at training",
    )
    evidence_days = serializers.IntegerField(allow_null=True)
    decision_kind = serializers.ChoiceField(choices=DecisionKind.choices, allow_null=True)
    waiting_for = serializers.CharField(allow_null=True, help_text="Who or what it waits on")
    canary_weight = serializers.FloatField()


class SegmentHealthSerializer(serializers.Serializer):
    name = serializers.CharField()
    segment = serializers.CharField()
    champion = ChampionHealthSerializer(allow_null=True)
    challenger = ChallengerHealthSerializer(allow_null=True)
    challengers = ChallengerHealthSerializer(
        many=True, help_text="Every waiting challenger and shadow, side by side, newest first"
    )
    canary = RolloutSummarySerializer(
        allow_null=True, help_text="The segment's running or paused canary rollout"
    )


class ModelHealthSerializer(serializers.Serializer):
    """The spec's shape for the global segment, with every department segment beside it."""

    name = serializers.CharField()
    segment = serializers.CharField(help_text="Always `global`: the segment of the top level")
    champion = ChampionHealthSerializer(allow_null=True)
    challenger = ChallengerHealthSerializer(allow_null=True)
    challengers = ChallengerHealthSerializer(many=True)
    canary = RolloutSummarySerializer(
        allow_null=True, help_text="The global segment's running or paused canary rollout"
    )
    segments = SegmentHealthSerializer(
        many=True, help_text="Department segments with their own champion or challenger"
    )


class ReasonSerializer(serializers.Serializer):
    reason = TextField(max_length=2000, help_text="Why; kept in the transition log")


class PromoteSerializer(ReasonSerializer):
    segment = TextField(
        required=False,
        max_length=120,
        help_text="If given, must be the version's segment (a guard against promoting the wrong "
        "version)",
    )


class RetrainRequestSerializer(serializers.Serializer):
    name = TextField(max_length=64, default=DEFAULT_MODEL_NAME)
    segment = TextField(max_length=120, default=GLOBAL_SEGMENT, validators=[validate_segment])
    algorithm = serializers.ChoiceField(
        choices=sorted(FAMILIES),
        required=False,
        help_text="Default: the champion's algorithm",
    )
    hyperparameters = serializers.DictField(
        required=False, help_text="Default: the champion's (same algorithm)"
    )
    window_days = serializers.IntegerField(
        required=False, min_value=28, max_value=3650, help_text="Training window; default 730"
    )
    reason = TextField(required=False, allow_blank=True, max_length=2000, default="")

    def validate(self, attrs):
        from mlops.targets import retrain_hyperparameter_problems, retrain_target_problems

        problems = retrain_target_problems(name=attrs["name"], segment=attrs["segment"])
        if problems:
            raise serializers.ValidationError(problems)
        if "hyperparameters" in attrs:
            bad = retrain_hyperparameter_problems(
                name=attrs["name"],
                segment=attrs["segment"],
                algorithm=attrs.get("algorithm"),
                hyperparameters=attrs["hyperparameters"],
            )
            if bad:
                raise serializers.ValidationError({"hyperparameters": bad})
        return attrs


class RetrainingLogSerializer(serializers.ModelSerializer):
    requested_by = RelatedLabelField(
        annotation="requested_by_username", source="requested_by.username"
    )
    resulting_version = RelatedLabelField(
        annotation="resulting_version_label", source="resulting_version.version"
    )
    trigger_metadata = serializers.DictField(read_only=True)
    hyperparameters = serializers.DictField(read_only=True)
    outcome = serializers.ChoiceField(
        choices=[("", "Not decided yet"), *ModelRetrainingLog.Outcome.choices], read_only=True
    )
    decision_kind = serializers.ChoiceField(
        choices=[("", "Not decided yet"), *DecisionKind.choices],
        read_only=True,
        help_text="refresh: the champion's own recipe on fresher data; recipe_change: another "
        "recipe, through the gate; review: a person decides; first_model: nothing to beat",
    )
    decision = serializers.DictField(
        read_only=True, help_text="The decision on the result: kind, action, reasons, evidence"
    )

    class Meta:
        model = ModelRetrainingLog
        fields = [
            "id",
            "name",
            "segment",
            "trigger",
            "trigger_metadata",
            "status",
            "attempts",
            "requested_by",
            "algorithm",
            "hyperparameters",
            "window_days",
            "rows",
            "data_start",
            "data_end",
            "resulting_version",
            "outcome",
            "decision_kind",
            "decision",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class BacktestPointSerializer(serializers.Serializer):
    """One backtest window: its dates, the metrics over its points, and how many there were."""

    window_start = serializers.DateField()
    window_end = serializers.DateField()
    mode = serializers.ChoiceField(
        choices=["refit", "warm_start"],
        help_text="How the window was fit: from scratch, or continuing the window before's trees "
        "(the tenant's walk_forward_warm_start; T-1 and shadow results: refit)",
    )
    mae = FiniteFloatField(allow_null=True)
    mape = FiniteFloatField(allow_null=True, help_text="%")
    wape = FiniteFloatField(allow_null=True, help_text="%")
    bias = FiniteFloatField(allow_null=True, help_text="%")
    stockout_miss_rate = FiniteFloatField(allow_null=True)
    overstock_rate = FiniteFloatField(allow_null=True)
    interval_coverage = FiniteFloatField(allow_null=True, help_text="Share inside the 80% interval")
    coverage = FiniteFloatField(allow_null=True)
    fva_pct = FiniteFloatField(
        allow_null=True,
        help_text="% by which MAE beats the 7-day seasonal naive of the same points (negative: "
        "worse)",
    )
    mase = FiniteFloatField(
        allow_null=True, help_text="Mean over series of MAE / in-sample 7-day naive MAE"
    )
    rmsse = FiniteFloatField(
        allow_null=True, help_text="Mean over series of RMSE / in-sample 7-day naive RMSE"
    )
    wql = FiniteFloatField(
        allow_null=True, help_text="Weighted quantile loss over the 0.1, 0.5 and 0.9 quantiles"
    )
    tracking_signal = FiniteFloatField(
        allow_null=True,
        help_text="Cumulative (actual - forecast) / MAD per series, mean over series (T-1: over "
        "the week up to the day); acceptable within +-4",
    )
    n_points = serializers.IntegerField()
    n_missing = serializers.IntegerField(help_text="Points without an actual")


class BacktestTrendSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField()
    segment = serializers.CharField()
    status = serializers.CharField()
    kind = serializers.ChoiceField(choices=["walk_forward", "t_minus_1", "shadow"])
    days = serializers.IntegerField(
        allow_null=True,
        help_text="Windows starting within these days up to the latest: the `days` asked for, "
        "or the days the latest walk-forward's windows cover (null when there is none)",
    )
    points = BacktestPointSerializer(many=True, help_text="Oldest first")


class DriftIncidentSerializer(serializers.ModelSerializer):
    champion = RelatedLabelField(
        annotation="champion_label", source="champion.version", allow_null=False
    )
    challenger = RelatedLabelField(
        annotation="challenger_label",
        source="challenger.version",
        help_text="The version trained for this incident",
    )
    alert_id = serializers.IntegerField(read_only=True, allow_null=True)
    retrain_log_id = serializers.IntegerField(read_only=True, allow_null=True)
    rules = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="Rules that fired when it opened"
    )
    detection = serializers.DictField(read_only=True, help_text="The numbers when it opened")
    latest = serializers.DictField(read_only=True, help_text="The numbers of the last check")
    root_cause = serializers.DictField(
        read_only=True,
        help_text="Where the drift sits and which inputs moved (mlops.services.rootcause): "
        "`recent` and `reference` windows, `leads` (error or bias), per kind the change with its "
        "`by_department`, `by_store` and `top_series` shares, and `input_shift` (PSI per input, "
        "with its threshold and the inputs above it); recomputed at each check while open",
    )
    resolution = serializers.ChoiceField(
        choices=[("", "Not resolved"), *DriftIncident.Resolution.choices], read_only=True
    )
    resolved_by = RelatedLabelField(
        annotation="resolved_by_username", source="resolved_by.username"
    )

    class Meta:
        model = DriftIncident
        fields = [
            "id",
            "name",
            "segment",
            "status",
            "champion",
            "change_date",
            "opened_on",
            "last_checked_on",
            "rules",
            "detection",
            "latest",
            "root_cause",
            "quiet_days",
            "alert_id",
            "retrain_log_id",
            "challenger",
            "resolution",
            "resolved_on",
            "resolved_by",
            "resolution_note",
            "snoozed_until",
        ]
