"""JSON shapes of canary rollouts: starting one, a person's move, a plan and its timeline."""

from rest_framework import serializers

from config.api_input import TextField
from mlops.models import GUARDRAIL_METRICS, RolloutEvent, RolloutPlan, validate_plan

# The smallest share a step may take (0.1% of the series): a share must be above 0.
MIN_SHARE = 0.001


class GuardrailSerializer(serializers.Serializer):
    metric = serializers.ChoiceField(choices=GUARDRAIL_METRICS)
    tolerance = serializers.FloatField(
        min_value=0,
        max_value=1000,
        help_text="How much worse than the champion the canary may be: points of % for wape "
        "and |bias|, a share (0-1) for stockout_miss_rate and overstock_rate, a drop in share "
        "for interval_coverage",
    )


class StartCanarySerializer(serializers.Serializer):
    initial_share = serializers.FloatField(
        min_value=MIN_SHARE,
        max_value=1,
        help_text="Share of the version's series served at the first step, in (0, 1]",
    )
    steps = serializers.ListField(
        child=serializers.FloatField(min_value=MIN_SHARE, max_value=1),
        required=False,
        default=list,
        max_length=10,
        help_text="The later shares, each larger than the one before, e.g. [0.25, 0.5, 1.0]",
    )
    bake_days = serializers.IntegerField(
        min_value=1, max_value=60, default=1, help_text="Judged days each step must pass"
    )
    guardrails = GuardrailSerializer(
        many=True,
        required=False,
        help_text="Default: wape 5, bias 5, stockout_miss_rate 0.05, overstock_rate 0.05, "
        "interval_coverage 0.10",
    )
    confidence = serializers.FloatField(
        required=False,
        min_value=0.5,
        max_value=0.999,
        help_text="Confidence a paired test over series needs to call a breach (default: the "
        "tenant's promotion confidence)",
    )
    reason = TextField(max_length=2000, help_text="Why; kept in the plan's timeline")

    def validate(self, attrs):
        from django.core.exceptions import ValidationError

        shares = [attrs["initial_share"], *attrs.get("steps", [])]
        try:
            validate_plan(
                shares=shares,
                bake_days=attrs["bake_days"],
                guardrails=[dict(rule) for rule in attrs.get("guardrails", [])],
            )
        except ValidationError as error:
            raise serializers.ValidationError(error.message_dict) from error
        return attrs


class GuardrailResultSerializer(serializers.Serializer):
    metric = serializers.CharField()
    scope = serializers.CharField(help_text="`all` canary series, or `department:<name>`")
    tolerance = serializers.FloatField()
    unit = serializers.CharField()
    canary = serializers.FloatField(allow_null=True)
    champion = serializers.FloatField(allow_null=True)
    worse_by = serializers.FloatField(allow_null=True, help_text="Positive: the canary is worse")
    confidence = serializers.FloatField(help_text="That the canary is worse (paired test)")
    n_series = serializers.IntegerField()
    n_points = serializers.IntegerField()
    breached = serializers.BooleanField()


class RolloutSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.CharField()
    segment = serializers.CharField()
    status = serializers.ChoiceField(choices=RolloutPlan.Status.choices)
    step = serializers.IntegerField(help_text="Today's step, from 1")
    steps = serializers.IntegerField()
    share = serializers.FloatField(help_text="Share of its series the canary serves now")
    shares = serializers.ListField(child=serializers.FloatField())
    bake_days = serializers.IntegerField()
    days_baked = serializers.IntegerField(help_text="Judged days served at today's step")
    started_on = serializers.DateField()
    last_evaluated_on = serializers.DateField(allow_null=True)
    last_outcome = serializers.ChoiceField(
        choices=["hold", "advance", "promote", "rollback"], allow_null=True
    )
    guardrail_values = GuardrailResultSerializer(
        many=True, help_text="The last judgement over all canary series"
    )
    breaches = GuardrailResultSerializer(many=True, help_text="In any scope, at the last one")


class RolloutEventSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=RolloutEvent.Kind.choices)
    from_status = serializers.CharField()
    to_status = serializers.CharField()
    step = serializers.IntegerField()
    share = serializers.FloatField()
    day = serializers.DateField(allow_null=True, help_text="The T-1 day judged, if any")
    actor = serializers.CharField()
    reason = serializers.CharField()
    evidence = serializers.DictField()
    created_at = serializers.DateTimeField()


class RolloutPlanSerializer(RolloutSummarySerializer):
    name = serializers.CharField()
    champion = serializers.CharField(allow_null=True, help_text="When the plan started")
    guardrails = GuardrailSerializer(many=True)
    confidence = serializers.FloatField()
    step_started_on = serializers.DateField()
    ended_on = serializers.DateField(allow_null=True)
    outcome_reason = serializers.CharField()
    created_by = serializers.CharField(allow_null=True)
    series = serializers.DictField(
        child=serializers.IntegerField(), help_text="Canary series per department"
    )
    allowed_actions = serializers.ListField(
        child=serializers.ChoiceField(choices=["pause", "resume", "abort", "skip"])
    )
    timeline = RolloutEventSerializer(many=True, help_text="Oldest first")
