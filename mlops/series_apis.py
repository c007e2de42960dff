"""GET /api/v1/series/history: one series day by day (actuals, stock-outs, promotions, the
served forecast with its interval, each shadow's forecast). A read: it writes nothing."""

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import HasRequiredPermissions, validated_query
from config.api_errors import error_responses
from config.read_cache import cached_read
from forecasting.serializers import FiniteFloatField
from mlops.models import DEFAULT_MODEL_NAME
from mlops.series_selectors import MAX_DAYS, UnknownSeriesError, series_history


class SeriesHistoryQuerySerializer(serializers.Serializer):
    # Codes are matched as sent (see ForecastQuerySerializer).
    store = serializers.CharField(max_length=64, trim_whitespace=False, help_text="Store code")
    product = serializers.CharField(max_length=64, trim_whitespace=False, help_text="Product SKU")
    start = serializers.DateField(help_text="First day (YYYY-MM-DD)")
    end = serializers.DateField(help_text=f"Last day, at most {MAX_DAYS} days after the first")
    name = serializers.CharField(
        max_length=64, default=DEFAULT_MODEL_NAME, trim_whitespace=False, help_text="Model name"
    )

    def validate(self, data):
        if data["end"] < data["start"]:
            raise serializers.ValidationError({"end": ["Give an end on or after the start."]})
        if (data["end"] - data["start"]).days + 1 > MAX_DAYS:
            raise serializers.ValidationError({"end": [f"Give at most {MAX_DAYS} days."]})
        return data


class ServedPointSerializer(serializers.Serializer):
    version = serializers.CharField()
    forecast = FiniteFloatField(help_text="Forecast units")
    lower = FiniteFloatField(allow_null=True, help_text="Lower bound of the 80% interval")
    upper = FiniteFloatField(allow_null=True, help_text="Upper bound of the 80% interval")
    made_on = serializers.DateField(help_text="The day the forecast was made (its latest run)")


class ShadowPointSerializer(serializers.Serializer):
    version = serializers.CharField()
    forecast = FiniteFloatField(help_text="Forecast units")
    made_on = serializers.DateField()


class SeriesDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    actual = serializers.IntegerField(
        allow_null=True,
        help_text="Units sold as stored (0 on a day the store reported other sales; null where "
        "it reported nothing)",
    )
    censored = serializers.BooleanField(
        help_text="A zero sale while out of stock: demand unknown, not scored"
    )
    promotion = serializers.BooleanField(
        help_text="On promotion that day (the sale says so, or a planned promotion covers it)"
    )
    served = ServedPointSerializer(
        allow_null=True, help_text="The forecast served for the day (null: none was)"
    )
    shadows = ShadowPointSerializer(many=True, help_text="Each shadow version's forecast")


class SeriesHistorySerializer(serializers.Serializer):
    store = serializers.CharField(source="store.code")
    product = serializers.CharField(source="product.sku")
    department = serializers.CharField(source="product.department")
    name = serializers.CharField()
    start = serializers.DateField()
    end = serializers.DateField()
    days = SeriesDaySerializer(many=True)


class SeriesHistoryApi(APIView):
    permission_classes = [HasRequiredPermissions]
    required_permissions = ("forecasting.view_forecast", "forecasting.view_sale")

    @extend_schema(
        operation_id="series_history_retrieve",
        summary="One series day by day: actuals, promotions, served and shadow forecasts",
        description="Every day from `start` to `end` (both included, at most "
        f"{MAX_DAYS} days): the stored actual, whether it was censored by a stock-out or on "
        "promotion, the forecast served for it (version, value and 80% interval, from the "
        "latest run made on or before the day) and each shadow version's forecast. A read "
        "writes nothing. 404 for an unknown store or product, or a pair that never sold and "
        "was never forecast.",
        parameters=[SeriesHistoryQuerySerializer],
        responses={200: SeriesHistorySerializer, **error_responses(400, 404)},
        tags=["forecasts"],
    )
    @cached_read
    def get(self, request):
        params = validated_query(request, SeriesHistoryQuerySerializer)
        try:
            history = series_history(
                store_code=params["store"],
                product_sku=params["product"],
                start=params["start"],
                end=params["end"],
                name=params["name"],
            )
        except UnknownSeriesError as exc:
            raise exceptions.NotFound(str(exc)) from exc
        return Response(SeriesHistorySerializer(history).data)
