"""Tenant admin for stores, products, sales and forecasts."""

from django.contrib import admin

from config.admin_sites import tenant_admin
from forecasting.models import Forecast, Product, Sale, Store


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
    list_display = ["date", "store", "product", "quantity", "on_promotion", "price"]
    list_filter = ["on_promotion", "product__department"]
    date_hierarchy = "date"
    list_select_related = ["store", "product"]
    raw_id_fields = ["store", "product"]
    show_full_result_count = False  # counting millions of rows on every page is slow


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
