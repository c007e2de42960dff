"""REST endpoints of the ML alert inbox: list, stats, detail, mark read, approve or dismiss."""

import django_filters
from django.db.models import F
from django.shortcuts import get_object_or_404
from django_fsm import TransitionNotAllowed
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.response import Response
from rest_framework.views import APIView

from alerts.models import MLAlert
from alerts.selectors import alert_list, alert_stats
from alerts.serializers import AlertActionSerializer, AlertStatsSerializer, MLAlertSerializer
from alerts.services import act_on_alert, mark_alert_read
from config.api import HasRequiredPermissions
from config.api_errors import error_responses, transition_conflict
from config.read_cache import cached_read

VIEW_ALERTS = ("alerts.view_mlalert",)


def alert_rows():
    """Alerts with the labels MLAlertSerializer shows of their version and people, read in the
    same query (no related objects loaded)."""
    return (
        alert_list()
        .select_related(None)
        .annotate(
            model_version_label=F("model_version__version"),
            read_by_username=F("read_by__username"),
            actioned_by_username=F("actioned_by__username"),
        )
    )


class MLAlertFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=MLAlert.Status.choices)
    severity = django_filters.MultipleChoiceFilter(choices=MLAlert.Severity.choices)
    alert_type = django_filters.MultipleChoiceFilter(choices=MLAlert.AlertType.choices)

    class Meta:
        model = MLAlert
        fields = ["status", "severity", "alert_type"]


class MLAlertListApi(generics.ListAPIView):
    permission_classes = [HasRequiredPermissions]
    required_permissions = VIEW_ALERTS
    serializer_class = MLAlertSerializer
    filterset_class = MLAlertFilter
    ordering_fields = ["created_at", "last_raised_at", "occurrences"]
    ordering = ["-created_at", "-pk"]

    def get_queryset(self):
        return alert_rows()

    @extend_schema(
        operation_id="ml_alerts_list",
        summary="List ML alerts, newest first",
        description="Filter with `status`, `severity` and `alert_type` (each may repeat); "
        "order with `ordering`.",
        responses={200: MLAlertSerializer(many=True), **error_responses(400, 404)},
        tags=["ml-alerts"],
    )
    @cached_read
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class MLAlertStatsApi(APIView):
    permission_classes = [HasRequiredPermissions]
    required_permissions = VIEW_ALERTS

    @extend_schema(
        operation_id="ml_alerts_stats",
        summary="Unread and open alerts by severity, and alerts by status",
        responses={200: AlertStatsSerializer, **error_responses()},
        tags=["ml-alerts"],
    )
    @cached_read
    def get(self, request):
        return Response(AlertStatsSerializer(alert_stats()).data)


class MLAlertDetailApi(generics.RetrieveAPIView):
    permission_classes = [HasRequiredPermissions]
    required_permissions = VIEW_ALERTS
    serializer_class = MLAlertSerializer
    lookup_url_kwarg = "alert_id"

    def get_queryset(self):
        return alert_rows()

    @extend_schema(
        operation_id="ml_alerts_retrieve",
        summary="One ML alert",
        responses={200: MLAlertSerializer, **error_responses(404)},
        tags=["ml-alerts"],
    )
    @cached_read
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class MLAlertReadApi(APIView):
    permission_classes = [HasRequiredPermissions]
    required_permissions = VIEW_ALERTS

    @extend_schema(
        operation_id="ml_alerts_read",
        summary="Mark an alert read (reading it again changes nothing)",
        request=None,
        responses={200: MLAlertSerializer, **error_responses(404)},
        tags=["ml-alerts"],
    )
    def patch(self, request, alert_id: int):
        alert = get_object_or_404(MLAlert, pk=alert_id)
        alert = mark_alert_read(alert=alert, user=request.user)
        return Response(MLAlertSerializer(alert).data)


class MLAlertActionApi(APIView):
    permission_classes = [HasRequiredPermissions]
    required_permissions = VIEW_ALERTS

    @extend_schema(
        operation_id="ml_alerts_action",
        summary="Approve or dismiss an alert (ml_manager)",
        description="Approving a drift or promotion-pending alert promotes its challenger; "
        "dismissing one keeps or archives the challenger as the tenant's policy says. An alert "
        "already closed answers 409.",
        request=AlertActionSerializer,
        responses={200: MLAlertSerializer, **error_responses(400, 404, 409, 415)},
        tags=["ml-alerts"],
    )
    def patch(self, request, alert_id: int):
        alert = get_object_or_404(MLAlert, pk=alert_id)
        body = AlertActionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            alert = act_on_alert(
                alert=alert,
                user=request.user,
                action=body.validated_data["action"],
                note=body.validated_data["note"],
            )
        except TransitionNotAllowed as error:
            # A fresh copy, not refresh_from_db() (see experiments.apis.service_errors).
            current = MLAlert.objects.filter(pk=alert.pk).first() or alert
            raise transition_conflict(error, current) from error
        return Response(MLAlertSerializer(alert).data)
