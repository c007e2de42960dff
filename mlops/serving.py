"""GET /api/v1/forecasts: the forecast of one series from the version the arena routes it to.

A read: it writes nothing. The versions that shadow the series are named; their forecasts are
stored by the daily forecast job for every series.
"""

from django.db.models import F, Subquery
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import HasRequiredPermissions, validated_query
from config.api_errors import error_responses
from config.read_cache import cached_read
from forecasting.models import Forecast, Product, Store
from forecasting.serializers import FiniteFloatField
from mlops.models import DEFAULT_MODEL_NAME
from mlops.services import select_model_for_request


class ForecastQuerySerializer(serializers.Serializer):
    # Codes are matched as sent: a code of white space is unknown (404), as the schema's
    # minLength lets it be sent; DRF's trimming would refuse it as blank.
    store = serializers.CharField(max_length=64, trim_whitespace=False, help_text="Store code")
    product = serializers.CharField(max_length=64, trim_whitespace=False, help_text="Product SKU")
    days = serializers.IntegerField(
        default=7, min_value=1, max_value=28, help_text="How many days ahead"
    )
    name = serializers.CharField(
        max_length=64, default=DEFAULT_MODEL_NAME, trim_whitespace=False, help_text="Model name"
    )


class ForecastPointSerializer(serializers.Serializer):
    date = serializers.DateField()
    value = FiniteFloatField(allow_null=True, help_text="Forecast units")
    lower = FiniteFloatField(allow_null=True, help_text="Lower bound of the 80% interval")
    upper = FiniteFloatField(allow_null=True, help_text="Upper bound of the 80% interval")


class ServingVersionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    version = serializers.CharField()
    segment = serializers.CharField()
    algorithm = serializers.CharField()
    status = serializers.CharField()


class ServedForecastSerializer(serializers.Serializer):
    store = serializers.CharField()
    product = serializers.CharField()
    department = serializers.CharField()
    version = ServingVersionSerializer(help_text="The version that served this answer")
    routing_reason = serializers.CharField(help_text="Why that version serves this series")
    shadow_versions = serializers.ListField(
        child=serializers.CharField(),
        help_text="Versions that shadow this series (challengers, shadows, canaries): the daily "
        "forecast job stores their forecasts beside the served one",
    )
    made_on = serializers.DateField(
        allow_null=True, help_text="The day the served forecasts were made (the latest run)"
    )
    forecasts = ForecastPointSerializer(many=True)


def _latest_forecasts(*, version, store, product, days: int):
    """The day of the version's latest forecast run for the series, and that run's first `days`
    forecasts from its day on (None and [] when it has none), in one query."""
    rows = Forecast.objects.filter(model_version=version, store=store, product=product)
    latest = rows.order_by("-made_on").values("made_on")[:1]
    served = list(
        rows.filter(made_on=Subquery(latest), target_date__gte=F("made_on")).order_by(
            "target_date"
        )[:days]
    )
    if served:
        return served[0].made_on, served
    # A run with no day from its own on (never made so): its day, and nothing to serve.
    return rows.order_by("-made_on").values_list("made_on", flat=True).first(), []


class ForecastApi(APIView):
    permission_classes = [HasRequiredPermissions]
    required_permissions = ("forecasting.view_forecast",)

    @extend_schema(
        operation_id="forecasts_retrieve",
        summary="The forecast of one series for the next days, from the version that serves it",
        description="The arena routes the series (store pin, canary share, segment champion, "
        "else global champion) and answers that version's latest stored forecast from its "
        "day onwards. A read writes nothing: the versions that shadow the series are named, "
        "and their forecasts are stored by the daily forecast job for every series.",
        parameters=[ForecastQuerySerializer],
        responses={200: ServedForecastSerializer, **error_responses(400, 404)},
        tags=["forecasts"],
    )
    @cached_read
    def get(self, request):
        params = validated_query(request, ForecastQuerySerializer)
        store = get_object_or_404(Store, code=params["store"])
        product = get_object_or_404(Product, sku=params["product"])
        decision = select_model_for_request(store=store, product=product, name=params["name"])
        if decision.version is None:
            raise exceptions.NotFound(f"No model version serves this series: {decision.reason}.")
        made_on, served = _latest_forecasts(
            version=decision.version, store=store, product=product, days=params["days"]
        )
        version = decision.version
        body = {
            "store": store.code,
            "product": product.sku,
            "department": product.department,
            "version": {
                "id": version.pk,
                "name": version.name,
                "version": version.version,
                "segment": version.segment,
                "algorithm": version.algorithm,
                "status": version.status,
            },
            "routing_reason": decision.reason,
            "shadow_versions": [shadow.version for shadow in decision.shadow_versions],
            "made_on": made_on,
            "forecasts": [
                {"date": r.target_date, "value": r.value, "lower": r.lower, "upper": r.upper}
                for r in served
            ],
        }
        return Response(ServedForecastSerializer(body).data)
