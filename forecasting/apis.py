"""REST endpoints of forecasting: sales import and the promotion calendar (import and list).
Forecasts are served through the arena's routing: mlops/serving.py."""

import datetime as dt

import django_filters
from django.conf import settings
from django.db.models import Q
from drf_spectacular.utils import extend_schema
from rest_framework import generics, parsers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import HasRequiredPermissions, validated_query
from config.api_errors import BadRequest, PayloadTooLarge, error_responses
from config.read_cache import cached_read
from forecasting.models import PlannedPromotion
from forecasting.serializers import (
    CalendarImportRequestSerializer,
    CalendarImportSummarySerializer,
    PlannedPromotionQuerySerializer,
    PlannedPromotionSerializer,
    SalesImportRequestSerializer,
    SalesImportSummarySerializer,
)
from forecasting.services import SalesImportError, import_promotion_calendar, import_sales

# Multipart framing around the file: the size limit applies to the file, not to its envelope.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


class UploadApi(APIView):
    """An endpoint that takes one file upload, no larger than the sales upload limit."""

    permission_classes = [HasRequiredPermissions]
    parser_classes = [parsers.MultiPartParser, parsers.FormParser]

    def initial(self, request, *args, **kwargs):
        # Refuse an oversized body before parsing it, once the caller is known.
        super().initial(request, *args, **kwargs)
        limit = settings.SALES_UPLOAD_MAX_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit + MULTIPART_OVERHEAD_BYTES:
            raise PayloadTooLarge(
                f"The upload is {length:,} bytes; the limit is {limit:,} bytes.",
                details={"limit_bytes": limit, "content_length": length},
            )

    @staticmethod
    def checked_upload(upload):
        limit = settings.SALES_UPLOAD_MAX_BYTES
        if upload.size > limit:
            raise PayloadTooLarge(
                f"The file is {upload.size:,} bytes; the limit is {limit:,} bytes.",
                details={"limit_bytes": limit, "size_bytes": upload.size},
            )
        return upload


class SalesImportApi(UploadApi):
    # The import service checks no role itself: importing sales is adding them.
    required_permissions = ("forecasting.add_sale",)

    @extend_schema(
        operation_id="sales_import",
        summary="Import daily sales from a CSV or Parquet upload (data_scientist)",
        description="The whole file is validated first; a file with any bad row changes "
        "nothing and answers 400 with `details.errors` (row, column, value, reason) and "
        "`details.error_count` / `details.rows_at_fault`. Larger than the limit: 413.",
        request={"multipart/form-data": SalesImportRequestSerializer},
        responses={201: SalesImportSummarySerializer, **error_responses(400, 413, 415)},
        tags=["sales"],
    )
    def post(self, request):
        body = SalesImportRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        upload = self.checked_upload(body.validated_data["file"])
        try:
            summary = import_sales(
                source=upload,
                file_format=body.validated_data.get("format"),
                create_missing=not body.validated_data["reject_unknown"],
            )
        except SalesImportError as error:
            details = error.to_dict()
            details.pop("message")
            raise BadRequest(error.message, code="invalid_sales_file", details=details) from error
        data = {
            "rows": summary.rows,
            "inserted": summary.inserted,
            "updated": summary.updated,
            "series": summary.series,
            "stores_created": summary.stores_created,
            "products_created": summary.products_created,
            "date_min": summary.date_min,
            "date_max": summary.date_max,
            "seconds": summary.seconds,
        }
        return Response(SalesImportSummarySerializer(data).data, status=status.HTTP_201_CREATED)


class PromotionCalendarImportApi(UploadApi):
    required_permissions = ("forecasting.add_plannedpromotion",)

    @extend_schema(
        operation_id="promotions_import",
        summary="Import planned promotions and prices from a CSV or Parquet upload "
        "(data_scientist)",
        description="Columns: start_date, end_date; optional store (blank or `*`: every "
        "store), product or department, discount_pct, price, known_since (default: now). The "
        "whole file is validated first; a file with any bad row (an unknown store, product or "
        "department, an end before its start, a negative price, ...) changes nothing and "
        "answers 400 with `details.errors` (row, column, value, reason).",
        request={"multipart/form-data": CalendarImportRequestSerializer},
        responses={201: CalendarImportSummarySerializer, **error_responses(400, 413, 415)},
        tags=["promotions"],
    )
    def post(self, request):
        body = CalendarImportRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        upload = self.checked_upload(body.validated_data["file"])
        try:
            summary = import_promotion_calendar(
                source=upload, file_format=body.validated_data.get("format")
            )
        except SalesImportError as error:
            details = error.to_dict()
            details.pop("message")
            raise BadRequest(
                error.message, code="invalid_calendar_file", details=details
            ) from error
        return Response(
            CalendarImportSummarySerializer(summary).data, status=status.HTTP_201_CREATED
        )


class PlannedPromotionFilter(django_filters.FilterSet):
    store = django_filters.CharFilter(field_name="store__code", help_text="Store code")
    product = django_filters.CharFilter(field_name="product__sku", help_text="Product SKU")
    department = django_filters.CharFilter(method="in_department")
    active_on = django_filters.DateFilter(method="active_on_day", help_text="Runs on this day")
    known_by = django_filters.IsoDateTimeFilter(
        method="known_by_moment", help_text="Known at this moment"
    )

    class Meta:
        model = PlannedPromotion
        fields = ["store", "product", "department", "active_on", "known_by"]

    def in_department(self, queryset, name, value):
        return queryset.filter(Q(department=value) | Q(product__department=value))

    def active_on_day(self, queryset, name, value):
        return queryset.filter(start_date__lte=value, end_date__gte=value)

    def known_by_moment(self, queryset, name, value):
        # PostgreSQL refuses offsets beyond 15:59 (ISO 8601 allows up to 23:59): compare in UTC.
        try:
            moment = value.astimezone(dt.UTC)
        except OverflowError:  # within a day of year 1 or 9999: before or after every plan
            return queryset if value.year > 1 else queryset.none()
        return queryset.filter(known_since__lte=moment)


class PlannedPromotionListApi(generics.ListAPIView):
    permission_classes = [HasRequiredPermissions]
    required_permissions = ("forecasting.view_plannedpromotion",)
    serializer_class = PlannedPromotionSerializer
    filterset_class = PlannedPromotionFilter
    ordering_fields = ["start_date", "known_since"]
    ordering = ["start_date", "pk"]

    def get_queryset(self):
        return PlannedPromotion.objects.select_related("store", "product")

    @extend_schema(
        operation_id="promotions_list",
        summary="The promotion calendar: planned promotions and prices, by first day",
        description="Filter with `store`, `product`, `department`, `active_on` (a day) and "
        "`known_by` (a moment: the calendar as it was known then).",
        responses={200: PlannedPromotionSerializer(many=True), **error_responses(400, 404)},
        tags=["promotions"],
    )
    @cached_read
    def get(self, request, *args, **kwargs):
        validated_query(request, PlannedPromotionQuerySerializer)
        return super().get(request, *args, **kwargs)
