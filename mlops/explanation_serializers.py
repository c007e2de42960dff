"""JSON shapes of forecast explanations and of a version's global feature importance."""

from rest_framework import serializers

from forecasting.families.inputs import IDENTITY_LINK, LOG_LINK
from forecasting.serializers import FiniteFloatField
from mlops.models import DEFAULT_MODEL_NAME
from mlops.serving import ServingVersionSerializer


class ExplainQuerySerializer(serializers.Serializer):
    # Codes are matched as sent, as GET /forecasts matches them (see ForecastQuerySerializer).
    store = serializers.CharField(max_length=64, trim_whitespace=False, help_text="Store code")
    product = serializers.CharField(max_length=64, trim_whitespace=False, help_text="Product SKU")
    date = serializers.DateField(help_text="The day forecast (target date), YYYY-MM-DD")
    name = serializers.CharField(
        max_length=64, default=DEFAULT_MODEL_NAME, trim_whitespace=False, help_text="Model name"
    )


class FeatureContributionSerializer(serializers.Serializer):
    feature = serializers.CharField()
    value = FiniteFloatField(
        allow_null=True, help_text="The feature's value in this forecast (null: unknown)"
    )
    contribution = serializers.FloatField(
        help_text="What the feature adds to the base value, in the model's output space"
    )


class OutputStepSerializer(serializers.Serializer):
    step = serializers.ChoiceField(choices=["exp", "floor_at_zero", "store_closed"])
    description = serializers.CharField()
    result = serializers.FloatField(help_text="The value after this step")


class ForecastExplanationSerializer(serializers.Serializer):
    store = serializers.CharField(source="forecast.store.code")
    product = serializers.CharField(source="forecast.product.sku")
    date = serializers.DateField(source="forecast.target_date")
    made_on = serializers.DateField(
        source="forecast.made_on", help_text="The day the daily forecast made this forecast"
    )
    days_ahead = serializers.IntegerField(help_text="0: the first day of that run")
    version = ServingVersionSerializer(help_text="The version that served this forecast")
    method = serializers.CharField(
        default="tree_shap",
        help_text="`tree_shap`: XGBoost's exact per-tree Shapley values (pred_contribs)",
    )
    output_space = serializers.ChoiceField(
        choices=[IDENTITY_LINK, LOG_LINK],
        help_text="Where the contributions add up: `identity` (units) or `log` (log units, "
        "for Poisson and Tweedie objectives; `output_steps` then starts with exp)",
    )
    base_value = serializers.FloatField(
        help_text="The model's output before any feature is known (its mean raw output)"
    )
    contributions = FeatureContributionSerializer(
        many=True, help_text="Every feature, largest |contribution| first"
    )
    model_output = serializers.FloatField(help_text="base_value + the sum of the contributions")
    output_steps = OutputStepSerializer(
        many=True,
        help_text="From the model's output to the forecast served, in order (empty: the output "
        "is the forecast)",
    )
    prediction = serializers.FloatField(
        source="forecast.value", help_text="The forecast served, as GET /forecasts gives it"
    )
    explained_prediction = serializers.FloatField(
        help_text="model_output through output_steps: the prediction the contributions explain"
    )
    reproduced = serializers.BooleanField(
        help_text="explained_prediction is the served prediction within 0.001 (false: the sales "
        "the forecast was made from have changed since)"
    )


class ImportanceWindowSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    days = serializers.IntegerField()


class PermutationFeatureSerializer(serializers.Serializer):
    feature = serializers.CharField()
    importance = serializers.FloatField(
        help_text="MAE increase (units) when the feature is shuffled across the held-out rows"
    )
    spread = serializers.FloatField(help_text="Standard deviation over the shuffles")
    share_pct = serializers.FloatField(help_text="Share of the positive importances, in %")


class PermutationImportanceSerializer(serializers.Serializer):
    method = serializers.CharField(help_text="`permutation`")
    metric = serializers.CharField(help_text="`mae_increase`")
    unit = serializers.CharField()
    baseline_mae = serializers.FloatField(help_text="MAE of the unshuffled held-out forecasts")
    rows = serializers.IntegerField(help_text="Held-out (series, day) points scored")
    repeats = serializers.IntegerField(help_text="Shuffles per feature")
    seed = serializers.IntegerField()
    held_out = serializers.CharField(
        help_text="`interval_calibration` (the weeks the interval calibration held out) or "
        "`last_week_refit`"
    )
    window = ImportanceWindowSerializer()
    features = PermutationFeatureSerializer(many=True, help_text="Largest importance first")


class NoContributionsDetailsSerializer(serializers.Serializer):
    version = ServingVersionSerializer()
    importance = PermutationImportanceSerializer(
        allow_null=True,
        help_text="The version's global permutation importance, measured at training (null "
        "when it was trained before importance was measured)",
    )


class NoContributionsBodySerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=["no_exact_contributions", "history_unavailable"])
    message = serializers.CharField()
    details = NoContributionsDetailsSerializer()


class NoContributionsErrorSerializer(serializers.Serializer):
    """409: the forecast exists but has no exact explanation."""

    error = NoContributionsBodySerializer()
