"""Stores, products, daily sales and the forecasts models make (tenant schema)."""

from django.db import models


class Store(models.Model):
    code = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    region = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}".strip()


class Product(models.Model):
    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    department = models.CharField(max_length=100, db_index=True)

    class Meta:
        ordering = ["sku"]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}".strip()


class Sale(models.Model):
    """Units sold of one product in one store on one day (a re-sent day replaces the row)."""

    # No index of its own: the unique (store, product, date) index starts with the store, and
    # every index slows the bulk import.
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="sales", db_index=False)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="sales")
    date = models.DateField()
    quantity = models.PositiveIntegerField()
    on_promotion = models.BooleanField(default=False)
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["store", "product", "date"], name="sale_unique_store_product_date"
            )
        ]
        indexes = [
            # Training and backtests read date ranges across every series.
            models.Index(fields=["date"], name="sale_date_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.store_id}/{self.product_id} {self.date}: {self.quantity}"


class Forecast(models.Model):
    """A model version's forecast, made on `made_on`, of one series on `target_date`."""

    model_version = models.ForeignKey(
        "mlops.ModelVersion", on_delete=models.CASCADE, related_name="forecasts"
    )
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    made_on = models.DateField()
    target_date = models.DateField()
    value = models.FloatField()
    lower = models.FloatField(help_text="Lower bound of the 80% prediction interval")
    upper = models.FloatField(help_text="Upper bound of the 80% prediction interval")
    served = models.BooleanField(
        default=False, help_text="Served to users (champion) rather than a shadow forecast"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "made_on", "store", "product", "target_date"],
                name="forecast_unique_version_day_series_target",
            )
        ]
        indexes = [
            # T-1 backtests: every forecast for one target day.
            models.Index(fields=["target_date", "model_version"], name="forecast_target_idx"),
            # "Served by": which version served a series on a day.
            models.Index(
                fields=["store", "product", "target_date"],
                name="forecast_served_idx",
                condition=models.Q(served=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_version_id} {self.store_id}/{self.product_id} {self.target_date}"
