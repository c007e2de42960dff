"""GET /api/v1/forecasts/explain: why one served forecast is what it is, feature by feature.

A read: it writes nothing. The contributions are recomputed from the serving version's artifact
and the sales the forecast was made from, so they add up to the value that was served.
"""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import HasRequiredPermissions, validated_query
from config.api_errors import Conflict, error_responses
from config.read_cache import cached_read
from forecasting.models import Product, Store
from mlops.explanation_selectors import (
    HistoryUnavailableError,
    NoExactContributionsError,
    NoServedForecastError,
    explain_served_forecast,
    version_importance,
)
from mlops.explanation_serializers import (
    ExplainQuerySerializer,
    ForecastExplanationSerializer,
    NoContributionsDetailsSerializer,
    NoContributionsErrorSerializer,
)


class CannotExplain(Conflict):
    """A stored forecast that has no exact explanation; its version's importance comes along."""

    def __init__(self, message: str, *, code: str, version) -> None:
        details = {"version": version, "importance": version_importance(version)}
        super().__init__(message, details=NoContributionsDetailsSerializer(details).data)
        self.code = code


class ForecastExplainApi(APIView):
    permission_classes = [HasRequiredPermissions]
    required_permissions = ("forecasting.view_forecast", "mlops.view_modelversion")

    @extend_schema(
        operation_id="forecasts_explain",
        summary="Why a served forecast is what it is: each feature's exact contribution",
        description="The forecast served for the series on `date` (the latest made for that "
        "day), split into a base value and one contribution per feature by XGBoost's exact "
        "TreeSHAP (`pred_contribs`), largest first: `base_value` + the contributions = "
        "`model_output`, and `model_output` through `output_steps` (exp for log-link "
        "objectives, the floor at zero, a closed day) = `explained_prediction`, the served "
        "`prediction` within 0.001 (`reproduced`). 404 when no forecast was served for that "
        "series and day. 409 `no_exact_contributions` when the serving version's family has "
        "no exact contributions (seasonal naive, intermittent, LSTM): `details.importance` "
        "then holds the version's global permutation importance instead, labelled as such. "
        "A read writes nothing.",
        parameters=[ExplainQuerySerializer],
        responses={
            200: ForecastExplanationSerializer,
            409: OpenApiResponse(
                response=NoContributionsErrorSerializer,
                description="The forecast has no exact explanation: `details.version` served "
                "it, `details.importance` is its permutation importance (MAE increase on "
                "held-out days).",
            ),
            **error_responses(400, 404),
        },
        tags=["forecasts"],
    )
    @cached_read
    def get(self, request):
        params = validated_query(request, ExplainQuerySerializer)
        store = get_object_or_404(Store, code=params["store"])
        product = get_object_or_404(Product, sku=params["product"])
        try:
            explanation = explain_served_forecast(
                store=store, product=product, target_date=params["date"], name=params["name"]
            )
        except NoServedForecastError as error:
            raise exceptions.NotFound(str(error)) from error
        except NoExactContributionsError as error:
            raise CannotExplain(
                str(error), code="no_exact_contributions", version=error.version
            ) from error
        except HistoryUnavailableError as error:
            raise CannotExplain(
                str(error), code="history_unavailable", version=error.version
            ) from error
        return Response(
            ForecastExplanationSerializer(
                {
                    "forecast": explanation.forecast,
                    "days_ahead": explanation.days_ahead,
                    "version": explanation.version,
                    "method": "tree_shap",
                    "output_space": explanation.output_space,
                    "base_value": explanation.base_value,
                    "contributions": explanation.contributions,
                    "model_output": explanation.model_output,
                    "output_steps": explanation.output_steps,
                    "explained_prediction": explanation.explained_prediction,
                    "reproduced": explanation.reproduced,
                }
            ).data
        )
