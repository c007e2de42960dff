"""Evidence on model versions: shadow predictions beside the champion and backtest windows."""

from django.db import models

from mlops.models.registry import ModelVersion


class ShadowPrediction(models.Model):
    """A challenger's answer logged beside the champion's for the same series and day."""

    key = models.CharField(max_length=100, help_text="Request id or batch key", db_index=True)
    store = models.ForeignKey("forecasting.Store", on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey("forecasting.Product", on_delete=models.CASCADE, related_name="+")
    target_date = models.DateField()
    champion_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="shadow_as_champion"
    )
    champion_value = models.FloatField()
    challenger_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="shadow_predictions"
    )
    challenger_value = models.FloatField()
    actual = models.FloatField(null=True, blank=True, help_text="Filled in once sales arrive")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["key", "challenger_version", "store", "product", "target_date"],
                name="shadow_unique_key_version_series_day",
            )
        ]
        indexes = [
            models.Index(fields=["target_date"], name="shadow_target_idx"),
            models.Index(fields=["challenger_version", "target_date"], name="shadow_version_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.store_id}/{self.product_id} {self.target_date}"


class BacktestResult(models.Model):
    class Kind(models.TextChoices):
        WALK_FORWARD = "walk_forward", "Walk-forward"
        T_MINUS_1 = "t_minus_1", "T-1 daily"
        SHADOW = "shadow", "Shadow"

    # The fields a window's scoring fills in (forecasting.metrics.compute_all's names).
    METRIC_FIELDS = (
        "mae",
        "mape",
        "wape",
        "bias",
        "stockout_miss_rate",
        "overstock_rate",
        "interval_coverage",
        "coverage",
        "fva_pct",
        "mase",
        "rmsse",
        "wql",
        "tracking_signal",
        "n_points",
        "n_missing",
    )

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="backtests"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    window_start = models.DateField()
    window_end = models.DateField()
    mae = models.FloatField(null=True)
    mape = models.FloatField(null=True)
    wape = models.FloatField(null=True)
    bias = models.FloatField(null=True)
    stockout_miss_rate = models.FloatField(null=True)
    overstock_rate = models.FloatField(null=True)
    coverage = models.FloatField(null=True)
    interval_coverage = models.FloatField(null=True)
    # The retail pack (docs/METRICS.md); null where undefined (no naive error to beat, no
    # series long enough to scale, no demand).
    fva_pct = models.FloatField(
        null=True, help_text="% better (+) or worse than the 7-day seasonal naive, on MAE"
    )
    mase = models.FloatField(null=True, help_text="MAE over in-sample 7-day naive MAE")
    rmsse = models.FloatField(null=True, help_text="RMSE over in-sample 7-day naive RMSE")
    wql = models.FloatField(null=True, help_text="Weighted quantile loss (0.1, 0.5, 0.9)")
    tracking_signal = models.FloatField(
        null=True, help_text="Cumulative (actual - forecast) / MAD; acceptable within +-4"
    )
    mode = models.CharField(
        max_length=12,
        choices=[("refit", "Refit"), ("warm_start", "Warm start")],
        default="refit",
        help_text="How a walk-forward window was fit: from scratch, or continuing the window "
        "before's trees (the tenant's walk_forward_warm_start)",
    )
    n_points = models.PositiveIntegerField(default=0)
    n_missing = models.PositiveIntegerField(default=0, help_text="Points without an actual")
    department_metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model_version", "kind", "window_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "kind", "window_start", "window_end"],
                name="backtest_unique_version_kind_window",
            )
        ]
        indexes = [models.Index(fields=["kind", "window_end"], name="backtest_kind_end_idx")]

    def __str__(self) -> str:
        return f"{self.model_version} {self.kind} {self.window_start}..{self.window_end}"
