"""JSON shapes of sales and promotion calendar imports, of the calendar, and the finite float
that every metric and forecast answer uses."""

import math

from rest_framework import serializers

from forecasting.services.imports import FILE_FORMATS


class FiniteFloatField(serializers.FloatField):
    """A float that is null when unknown (NaN bounds are stored for intervals not yet calibrated)."""

    def to_representation(self, value):
        if value is None:
            return None
        value = float(value)
        return value if math.isfinite(value) else None


class SalesImportRequestSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A .csv or .parquet file (columns: docs/IMPORT.md)")
    format = serializers.ChoiceField(
        choices=FILE_FORMATS, required=False, help_text="Default: from the file name"
    )
    reject_unknown = serializers.BooleanField(
        default=False,
        help_text="Reject rows of stores and products the tenant lacks instead of creating them",
    )


class SalesImportSummarySerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    inserted = serializers.IntegerField()
    updated = serializers.IntegerField(help_text="Rows that replaced an existing day")
    series = serializers.IntegerField()
    stores_created = serializers.IntegerField()
    products_created = serializers.IntegerField()
    date_min = serializers.DateField(allow_null=True)
    date_max = serializers.DateField(allow_null=True)
    seconds = serializers.FloatField()


class CalendarImportRequestSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A .csv or .parquet file (columns: docs/IMPORT.md)")
    format = serializers.ChoiceField(
        choices=FILE_FORMATS, required=False, help_text="Default: from the file name"
    )


class CalendarImportSummarySerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    added = serializers.IntegerField()
    already_known = serializers.IntegerField(
        help_text="Rows the tenant already had (same plan, known from the same moment)"
    )
    date_min = serializers.DateField(allow_null=True)
    date_max = serializers.DateField(allow_null=True)


class PlannedPromotionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    store = serializers.CharField(
        source="store.code", allow_null=True, default=None, help_text="Null: every store"
    )
    product = serializers.CharField(
        source="product.sku", allow_null=True, default=None, help_text="Null: the department"
    )
    department = serializers.CharField(help_text="The promoted department (blank for a product)")
    start_date = serializers.DateField()
    end_date = serializers.DateField()
    discount_pct = serializers.FloatField(allow_null=True)
    price = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    known_since = serializers.DateTimeField(help_text="When the plan became known")


class PlannedPromotionQuerySerializer(serializers.Serializer):
    """The calendar list's date filters, checked before filtering: a blank or malformed day is
    a 400, not an unfiltered list."""

    active_on = serializers.DateField(required=False)
    known_by = serializers.DateTimeField(required=False)
