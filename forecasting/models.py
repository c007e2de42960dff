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
    # A zero sale on a day the shelf was empty says nothing about demand: it is censored (left
    # out of training targets and of every metric), not a sale of zero.
    in_stock = models.BooleanField(default=True, db_default=True)
    stock_on_hand = models.PositiveIntegerField(null=True, blank=True)

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

    @property
    def censored(self) -> bool:
        return self.quantity == 0 and not self.in_stock


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


class PlannedPromotion(models.Model):
    """A promotion (or a planned price) the retailer planned: which stores and products, which
    days, and from when it was known.

    `known_since` makes the calendar point-in-time: a forecast made at a moment sees only the
    rows known by then, so a backtest at a past cutoff cannot use a plan made after it.
    """

    # Null: every store.
    store = models.ForeignKey(
        Store, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Null: every product of `department`.
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    department = models.CharField(max_length=100, blank=True)
    start_date = models.DateField()
    end_date = models.DateField()
    discount_pct = models.FloatField(null=True, blank=True, help_text="Planned discount, in %")
    price = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, help_text="Planned price"
    )
    known_since = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["start_date", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(end_date__gte=models.F("start_date")),
                name="plannedpromotion_ends_after_start",
            ),
            models.CheckConstraint(
                condition=models.Q(product__isnull=False, department="")
                | models.Q(product__isnull=True) & ~models.Q(department=""),
                name="plannedpromotion_product_or_department",
            ),
            # A re-sent calendar adds nothing: the same plan, known from the same moment.
            models.UniqueConstraint(
                fields=["store", "product", "department", "start_date", "end_date", "known_since"],
                name="plannedpromotion_unique_plan",
                nulls_distinct=False,
            ),
        ]
        indexes = [models.Index(fields=["end_date", "start_date"], name="plannedpromo_days_idx")]

    def __str__(self) -> str:
        where = self.store.code if self.store_id else "all stores"
        what = self.product.sku if self.product_id else f"department {self.department}"
        return f"{what} at {where}, {self.start_date}..{self.end_date}"


class SeriesDemandClass(models.Model):
    """A series' demand class (Syntetos-Boylan) as of a day, from its recent history: which
    family suits it, and which `class:` segment's champion serves it."""

    class DemandClass(models.TextChoices):
        SMOOTH = "smooth", "Smooth"  # sells most days, sizes steady
        ERRATIC = "erratic", "Erratic"  # sells most days, sizes vary a lot
        INTERMITTENT = "intermittent", "Intermittent"  # many zero days, steady sizes
        LUMPY = "lumpy", "Lumpy"  # many zero days, sizes vary a lot

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    demand_class = models.CharField(max_length=20, choices=DemandClass.choices, db_index=True)
    adi = models.FloatField(
        null=True, help_text="Average inter-demand interval in days (none: nothing sold)"
    )
    cv2 = models.FloatField(help_text="Squared coefficient of variation of the non-zero sales")
    as_of = models.DateField(help_text="Classified from the days before this one")

    class Meta:
        ordering = ["store", "product"]
        constraints = [
            models.UniqueConstraint(fields=["store", "product"], name="seriesdemandclass_series")
        ]

    def __str__(self) -> str:
        return f"{self.store_id}/{self.product_id}: {self.demand_class}"
