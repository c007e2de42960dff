"""REST endpoints of the model registry: health, backtests, history, promotion, rollback, retrains."""

import django_filters
from django.db.models import F
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import HasRequiredPermissions, validated_query
from config.api_errors import error_responses
from config.read_cache import cached_read
from mlops import selectors
from mlops.health_cache import cached_model_health
from mlops.models import (
    GLOBAL_SEGMENT,
    DriftIncident,
    ModelRetrainingLog,
    ModelVersion,
    Trigger,
)
from mlops.serializers import (
    BacktestTrendSerializer,
    DriftIncidentSerializer,
    ModelHealthSerializer,
    ModelVersionHistorySerializer,
    ModelVersionSerializer,
    PromoteSerializer,
    ReasonSerializer,
    RetrainingLogSerializer,
    RetrainRequestSerializer,
)
from mlops.services import promote_to_champion, queue_retrain, rollback_champion

VIEW_MODELS = ("mlops.view_modelversion",)
VIEW_RETRAINS = ("mlops.view_modelretraininglog",)
VIEW_INCIDENTS = ("mlops.view_driftincident",)
DEFAULT_NAME = selectors.DEFAULT_MODEL_NAME

NAME_PARAMETER = OpenApiParameter(
    "name",
    {"type": "string", "minLength": 1, "maxLength": 64},
    description=f"Model name (default `{DEFAULT_NAME}`)",
    required=False,
)
VERSION_PARAMETER = OpenApiParameter(
    "version",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="Version label of the model name, e.g. `v12`",
)


class NameQuerySerializer(serializers.Serializer):
    # Matched as sent (see mlops.serving.ForecastQuerySerializer): white space names no model.
    name = serializers.CharField(max_length=64, default=DEFAULT_NAME, trim_whitespace=False)


def model_name(request) -> str:
    return validated_query(request, NameQuerySerializer)["name"]


def version_from_path(request, label: str) -> ModelVersion:
    """The version `label` of the `?name=` model (default demand_forecast); 404 if none."""
    return get_object_or_404(ModelVersion, name=model_name(request), version=label)


class ModelHealthApi(APIView):
    permission_classes = [HasRequiredPermissions]
    required_permissions = VIEW_MODELS

    @extend_schema(
        operation_id="models_health",
        summary="Champion and challenger health of a model",
        description="`champion` and `challenger` are the global segment's (null when it has "
        "none; `challenger` is the newest of `challengers`, which lists every waiting version "
        "side by side); `segments` lists the department segments that have their own. "
        "Challengers' numbers are the daily judging's, as of the latest T-1 day.",
        parameters=[NAME_PARAMETER],
        responses={200: ModelHealthSerializer, **error_responses(400)},
        tags=["models"],
    )
    @cached_read
    def get(self, request):
        name = model_name(request)
        entries = cached_model_health(name=name)
        top = next((e for e in entries if e["segment"] == GLOBAL_SEGMENT), None)
        body = {
            "name": name,
            "segment": GLOBAL_SEGMENT,
            "champion": top["champion"] if top else None,
            "challenger": top["challenger"] if top else None,
            "challengers": top["challengers"] if top else [],
            "canary": top["canary"] if top else None,
            "segments": [e for e in entries if e["segment"] != GLOBAL_SEGMENT],
        }
        return Response(ModelHealthSerializer(body).data)


class BacktestQuerySerializer(NameQuerySerializer):
    days = serializers.IntegerField(
        required=False,
        min_value=7,
        max_value=730,
        help_text="Windows starting within these days up to the latest (default: every window "
        "of the latest walk-forward; the last 90 days of T-1 or shadow results)",
    )
    kind = serializers.ChoiceField(
        choices=["walk_forward", "t_minus_1", "shadow"], default="walk_forward"
    )


class ModelBacktestApi(APIView):
    permission_classes = [HasRequiredPermissions]
    required_permissions = VIEW_MODELS

    @extend_schema(
        operation_id="models_backtest",
        summary="A version's backtest series over the last days, for charting",
        description="One point per backtest window (walk-forward weeks by default, or T-1 "
        "days, or shadow windows), oldest first: every window of the latest walk-forward, or "
        "the windows starting within `days` up to the latest one.",
        parameters=[VERSION_PARAMETER, BacktestQuerySerializer],
        responses={200: BacktestTrendSerializer, **error_responses(400, 404)},
        tags=["models"],
    )
    @cached_read
    def get(self, request, version: str):
        query = validated_query(request, BacktestQuerySerializer)
        found = get_object_or_404(ModelVersion, name=query["name"], version=version)
        days = query.get("days")
        points = selectors.get_backtest_trend(version=found, days=days, kind=query["kind"])
        if days is None and points:
            days = (points[-1]["window_end"] - points[0]["window_start"]).days + 1
        body = {
            "name": found.name,
            "version": found.version,
            "segment": found.segment,
            "status": found.status,
            "kind": query["kind"],
            "days": days,
            "points": points,
        }
        return Response(BacktestTrendSerializer(body).data)


def retraining_log_rows():
    """Retrains with the labels RetrainingLogSerializer shows, read in the same query."""
    return ModelRetrainingLog.objects.annotate(
        requested_by_username=F("requested_by__username"),
        resulting_version_label=F("resulting_version__version"),
    )


class ModelVersionFilter(django_filters.FilterSet):
    name = django_filters.CharFilter()
    segment = django_filters.CharFilter()
    status = django_filters.MultipleChoiceFilter(choices=ModelVersion.Status.choices)

    class Meta:
        model = ModelVersion
        fields = ["name", "segment", "status"]


class ModelHistoryApi(generics.ListAPIView):
    permission_classes = [HasRequiredPermissions]
    required_permissions = VIEW_MODELS
    serializer_class = ModelVersionHistorySerializer
    filterset_class = ModelVersionFilter
    ordering_fields = ["version_number", "created_at", "promoted_at"]
    ordering = ["name", "segment", "-version_number"]

    def get_queryset(self):
        return selectors.model_history()

    @extend_schema(
        operation_id="models_history",
        summary="Every version with its status changes (who, when, why, evidence)",
        responses={200: ModelVersionHistorySerializer(many=True), **error_responses(400, 404)},
        tags=["models"],
    )
    @cached_read
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ModelPromoteApi(APIView):
    permission_classes = [HasRequiredPermissions]
    required_permissions = VIEW_MODELS

    @extend_schema(
        operation_id="models_promote",
        summary="Promote a version to champion of its segment by hand (ml_manager)",
        description="The old champion is retired; the reason is kept in the transition log. "
        "A version that cannot be promoted from its status answers 409.",
        parameters=[VERSION_PARAMETER, NAME_PARAMETER],
        request=PromoteSerializer,
        responses={200: ModelVersionSerializer, **error_responses(400, 404, 409, 415)},
        tags=["models"],
    )
    def post(self, request, version: str):
        found = version_from_path(request, version)
        body = PromoteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        segment = body.validated_data.get("segment")
        if segment is not None and segment != found.segment:
            raise exceptions.ValidationError(
                {"segment": [f"{found.version} belongs to segment {found.segment!r}."]}
            )
        promoted = promote_to_champion(
            version=found, actor=request.user, reason=body.validated_data["reason"]
        )
        return Response(ModelVersionSerializer(promoted).data)


class ModelRollbackApi(APIView):
    permission_classes = [HasRequiredPermissions]
    required_permissions = VIEW_MODELS

    @extend_schema(
        operation_id="models_rollback",
        summary="Roll back the champion of this version's segment (ml_manager)",
        description="The last retired champion of the version's name/segment serves again and "
        "the current champion is archived; answers the restored version. With no former "
        "champion to restore it answers 409.",
        parameters=[VERSION_PARAMETER, NAME_PARAMETER],
        request=ReasonSerializer,
        responses={200: ModelVersionSerializer, **error_responses(400, 404, 409, 415)},
        tags=["models"],
    )
    def post(self, request, version: str):
        found = version_from_path(request, version)
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        restored = rollback_champion(
            name=found.name,
            segment=found.segment,
            actor=request.user,
            reason=body.validated_data["reason"],
        )
        return Response(ModelVersionSerializer(restored).data)


class ModelRetrainApi(APIView):
    permission_classes = [HasRequiredPermissions]
    required_permissions = VIEW_MODELS

    @extend_schema(
        operation_id="models_retrain",
        summary="Queue a manual retrain (data_scientist); poll the log entry it answers",
        description="A retrain of the same name/segment still queued or running is answered "
        "instead of a second one. The answer's `Location` is the log entry to poll.",
        request=RetrainRequestSerializer,
        responses={202: RetrainingLogSerializer, **error_responses(400, 415)},
        tags=["models"],
    )
    def post(self, request):
        body = RetrainRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        metadata = {"source": "api"}
        if data["reason"]:
            metadata["reason"] = data["reason"]
        log = queue_retrain(
            trigger=Trigger.MANUAL,
            name=data["name"],
            segment=data["segment"],
            algorithm=data.get("algorithm"),
            hyperparameters=data.get("hyperparameters"),
            window_days=data.get("window_days"),
            trigger_metadata=metadata,
            requested_by=request.user,
        )
        location = reverse("api-retraining-log-detail", kwargs={"log_id": log.pk})
        return Response(
            RetrainingLogSerializer(log).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": location},
        )


class RetrainingLogFilter(django_filters.FilterSet):
    name = django_filters.CharFilter()
    segment = django_filters.CharFilter()
    status = django_filters.MultipleChoiceFilter(choices=ModelRetrainingLog.Status.choices)
    trigger = django_filters.MultipleChoiceFilter(choices=Trigger.choices)

    class Meta:
        model = ModelRetrainingLog
        fields = ["name", "segment", "status", "trigger"]


class RetrainingLogListApi(generics.ListAPIView):
    permission_classes = [HasRequiredPermissions]
    required_permissions = VIEW_RETRAINS
    serializer_class = RetrainingLogSerializer
    filterset_class = RetrainingLogFilter
    ordering_fields = ["created_at", "finished_at"]
    ordering = ["-created_at", "-pk"]

    def get_queryset(self):
        return retraining_log_rows()

    @extend_schema(
        operation_id="models_retraining_log_list",
        summary="Retrains, newest first: trigger, status, outcome, resulting version",
        responses={200: RetrainingLogSerializer(many=True), **error_responses(400, 404)},
        tags=["models"],
    )
    @cached_read
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class RetrainingLogDetailApi(generics.RetrieveAPIView):
    permission_classes = [HasRequiredPermissions]
    required_permissions = VIEW_RETRAINS
    serializer_class = RetrainingLogSerializer
    lookup_url_kwarg = "log_id"

    def get_queryset(self):
        return retraining_log_rows()

    @extend_schema(
        operation_id="models_retraining_log_retrieve",
        summary="One retrain (poll it after POST /models/retrain)",
        responses={200: RetrainingLogSerializer, **error_responses(404)},
        tags=["models"],
    )
    @cached_read
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class DriftIncidentFilter(django_filters.FilterSet):
    name = django_filters.CharFilter()
    segment = django_filters.CharFilter()
    status = django_filters.MultipleChoiceFilter(choices=DriftIncident.Status.choices)

    class Meta:
        model = DriftIncident
        fields = ["name", "segment", "status"]


class DriftIncidentListApi(generics.ListAPIView):
    permission_classes = [HasRequiredPermissions]
    required_permissions = VIEW_INCIDENTS
    serializer_class = DriftIncidentSerializer
    filterset_class = DriftIncidentFilter
    ordering_fields = ["opened_on", "change_date"]
    ordering = ["-opened_on", "-pk"]

    def get_queryset(self):
        # The labels the serializer shows, read in the same query (no related objects loaded).
        return DriftIncident.objects.annotate(
            champion_label=F("champion__version"),
            challenger_label=F("challenger__version"),
            resolved_by_username=F("resolved_by__username"),
        )

    @extend_schema(
        operation_id="drift_incidents_list",
        summary="Drift incidents, newest first: change date, rules fired, answer and resolution",
        description="One incident per drift of a champion: opened when a rule first fires, "
        "open (one alert, one email) until a new champion, a dismissal or recovery resolves "
        "it. `change_date` is the first day the rules saw the shift; judging during the "
        "incident uses the days after it.",
        responses={200: DriftIncidentSerializer(many=True), **error_responses(400, 404)},
        tags=["models"],
    )
    @cached_read
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
