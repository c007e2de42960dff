"""Tenant admin for stores, products, sales and the promotion calendar (each with its import
page) and forecasts."""

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path

from config.admin_sites import tenant_admin
from forecasting.models import (
    Forecast,
    PlannedPromotion,
    Product,
    Sale,
    SeriesDemandClass,
    Store,
)
from forecasting.services import SalesImportError, import_promotion_calendar, import_sales


@admin.register(Store, site=tenant_admin)
class StoreAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "region"]
    search_fields = ["code", "name", "region"]
    list_filter = ["region"]


@admin.register(Product, site=tenant_admin)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "department"]
    search_fields = ["sku", "name"]
    list_filter = ["department"]


@admin.register(Sale, site=tenant_admin)
class SaleAdmin(admin.ModelAdmin):
    list_display = ["date", "store", "product", "quantity", "on_promotion", "price", "in_stock"]
    list_filter = ["on_promotion", "in_stock", "product__department"]
    date_hierarchy = "date"
    list_select_related = ["store", "product"]
    raw_id_fields = ["store", "product"]
    show_full_result_count = False  # counting millions of rows on every page is slow
    change_list_template = "admin/forecasting/sale/change_list.html"

    def get_urls(self):
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="forecasting_sale_import",
            ),
            *super().get_urls(),
        ]

    def import_view(self, request):
        """Upload a CSV/Parquet file through the sales import; show its summary, or every row
        at fault when the file is refused (then nothing was written)."""
        if not request.user.has_perm("forecasting.add_sale"):
            raise PermissionDenied
        form = SalesImportForm(request.POST or None, request.FILES or None)
        summary = refused = None
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                summary = import_sales(
                    source=upload, create_missing=form.cleaned_data["create_missing"]
                )
            except SalesImportError as exc:
                refused = exc
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Import sales",
            "form": form,
            "summary": summary,
            "refused": refused,
        }
        return TemplateResponse(request, "admin/forecasting/sale/import.html", context)


class SalesImportForm(forms.Form):
    file = forms.FileField(
        help_text="CSV or Parquet with columns date, store, product, quantity "
        "(optional: on_promotion, price, in_stock, stock_on_hand, department, store_name, "
        "product_name)."
    )
    create_missing = forms.BooleanField(
        required=False,
        initial=True,
        label="Create stores and products that are not known yet",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = settings.SALES_UPLOAD_MAX_BYTES
        if upload.size > limit:
            raise forms.ValidationError(
                f"The file is {upload.size:,} bytes; the limit is {limit:,} bytes."
            )
        return upload


@admin.register(Forecast, site=tenant_admin)
class ForecastAdmin(admin.ModelAdmin):
    list_display = [
        "target_date",
        "store",
        "product",
        "model_version",
        "made_on",
        "value",
        "lower",
        "upper",
        "served",
    ]
    list_filter = ["served", "made_on"]
    date_hierarchy = "target_date"
    list_select_related = ["store", "product", "model_version"]
    raw_id_fields = ["store", "product", "model_version"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(PlannedPromotion, site=tenant_admin)
class PlannedPromotionAdmin(admin.ModelAdmin):
    list_display = [
        "start_date",
        "end_date",
        "store",
        "product",
        "department",
        "discount_pct",
        "price",
        "known_since",
    ]
    list_filter = ["department", "product__department", "known_since", "store"]
    search_fields = ["product__sku", "store__code", "department"]
    date_hierarchy = "start_date"
    list_select_related = ["store", "product"]
    raw_id_fields = ["store", "product"]
    change_list_template = "admin/forecasting/plannedpromotion/change_list.html"

    def has_add_permission(self, request):
        return False  # rows come through the import, which validates the whole file

    def has_change_permission(self, request, obj=None):
        return False  # a plan changed later is a new row: the old one stays as it was known

    def get_urls(self):
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="forecasting_plannedpromotion_import",
            ),
            *super().get_urls(),
        ]

    def import_view(self, request):
        """Upload a CSV/Parquet calendar through the calendar import; show its summary, or
        every row at fault when the file is refused (then nothing was written)."""
        if not request.user.has_perm("forecasting.add_plannedpromotion"):
            raise PermissionDenied
        form = CalendarImportForm(request.POST or None, request.FILES or None)
        summary = refused = None
        if request.method == "POST" and form.is_valid():
            try:
                summary = import_promotion_calendar(source=form.cleaned_data["file"])
            except SalesImportError as exc:
                refused = exc
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Import a promotion calendar",
            "form": form,
            "summary": summary,
            "refused": refused,
        }
        return TemplateResponse(request, "admin/forecasting/plannedpromotion/import.html", context)


class CalendarImportForm(SalesImportForm):
    file = forms.FileField(
        help_text="CSV or Parquet with columns start_date, end_date and a product or a "
        "department (optional: store, discount_pct, price, known_since)."
    )
    create_missing = None


@admin.register(SeriesDemandClass, site=tenant_admin)
class SeriesDemandClassAdmin(admin.ModelAdmin):
    list_display = ["store", "product", "demand_class", "adi", "cv2", "as_of"]
    list_filter = ["demand_class", "product__department", "store"]
    search_fields = ["product__sku", "store__code"]
    list_select_related = ["store", "product"]

    def has_add_permission(self, request):
        return False  # the daily forecast classifies every series

    def has_change_permission(self, request, obj=None):
        return False
