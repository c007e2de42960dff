"""Continuous backtests: the weekly 90-day walk-forward of a recipe, and how results are stored."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import numpy as np
from django.db import transaction

from forecasting.backtesting import WindowResult, walk_forward, weekly_cutoffs
from forecasting.families import family
from forecasting.families.base import WarmStart
from forecasting.selectors import load_sales_panel
from mlops.health_cache import forget_model_health
from mlops.models import GLOBAL_SEGMENT, BacktestResult, ModelVersion
from mlops.selectors import WALK_FORWARD_DAYS
from mlops.services.data import PROMOTIONS_KNOWN_AHEAD, latest_sales_day, with_known_inputs
from mlops.services.evaluation import Recipe
from tenants.selectors import tenant_policy

logger = logging.getLogger(__name__)

Kind = BacktestResult.Kind
Status = ModelVersion.Status

# Versions the weekly walk-forward covers.
WEEKLY_BACKTEST_STATUSES = (Status.CHAMPION, Status.CHALLENGER)
# A window whose training history is shorter than this is skipped (nothing sensible to fit).
MIN_TRAINING_DAYS = 14
# backtest_degradation: the latest weekly window's MAE against the week before it.
DEGRADATION_PCT = 10.0


def tenant_overstock_tolerance() -> float:
    """The tenant's overstock tolerance, as the metrics take it."""
    return float(tenant_policy().overstock_tolerance)


def department_of(segment: str) -> str | None:
    """The department a segment is, or None (global, or a demand class: any department)."""
    return segment.split(":", 1)[1] if segment.startswith("department:") else None


def _json_number(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def result_fields(values: dict[str, Any]) -> dict[str, Any]:
    """A result row's metric fields from computed metrics (JSON numbers, counts as ints)."""
    fields = {name: _json_number(values.get(name)) for name in BacktestResult.METRIC_FIELDS}
    fields["n_points"] = int(fields["n_points"] or 0)
    fields["n_missing"] = int(fields["n_missing"] or 0)
    return fields


def department_json(breakdown: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per-department metrics as stored in `department_metrics` (sorted, JSON numbers)."""
    return {
        str(department): {name: _json_number(value) for name, value in values.items()}
        for department, values in sorted(breakdown.items())
    }


@transaction.atomic
def store_backtest_results(
    *, version: ModelVersion, kind: str, rows: list[dict[str, Any]]
) -> list[BacktestResult]:
    """Upsert one result per window (window_start, window_end, metric fields,
    department_metrics) on (version, kind, window); a re-run replaces, never duplicates.
    Returns the stored rows, oldest window first."""
    if not rows:
        return []
    objects = [BacktestResult(model_version=version, kind=kind, **row) for row in rows]
    BacktestResult.objects.bulk_create(
        objects,
        update_conflicts=True,
        unique_fields=["model_version", "kind", "window_start", "window_end"],
        update_fields=[*BacktestResult.METRIC_FIELDS, "department_metrics", "mode", "created_at"],
    )
    if kind == BacktestResult.Kind.T_MINUS_1:
        forget_model_health()  # its recent error
    return list(
        BacktestResult.objects.filter(
            model_version=version,
            kind=kind,
            window_start__in=[row["window_start"] for row in rows],
        ).order_by("window_start", "window_end")
    )


# -- weekly walk-forward -------------------------------------------------------------------------


def walk_forward_plan(
    *, days: int = WALK_FORWARD_DAYS, window: int = 7, end: dt.date | None = None
) -> tuple[list[dt.date], dt.date]:
    """The cutoffs of the weekly windows covering the `days` up to `end` (default: the latest
    sales day), oldest first, and that end. Raises ValueError when there are no sales."""
    end = end or latest_sales_day()
    if end is None:
        raise ValueError("There are no sales to backtest on.")
    return weekly_cutoffs(end, days=days, window=window), end


def walk_forward_windows(
    *,
    version: ModelVersion,
    days: int = WALK_FORWARD_DAYS,
    window: int = 7,
    end: dt.date | None = None,
    cutoffs: list[dt.date] | None = None,
    warm_start: WarmStart | None = None,
) -> list[WindowResult]:
    """The version's recipe walked forward over the weekly windows covering the `days` up to
    `end` (default: the latest sales day), or over the given `cutoffs` up to `end`: at each
    cutoff it is refit on its training window of sales strictly before the cutoff and forecasts
    the next `window` days of its segment's series. Windows with less than two weeks of history
    before the cutoff are left out. With `warm_start`, a boosted recipe continues each
    window's trees from the window before (see `WarmStart`). Raises ValueError when there are
    no sales."""
    if cutoffs is None:
        cutoffs, end = walk_forward_plan(days=days, window=window, end=end)
    recipe = Recipe.of(version)
    department = department_of(recipe.segment)
    panel = with_known_inputs(
        load_sales_panel(
            start=cutoffs[0] - dt.timedelta(days=recipe.window_days),
            end=end,
            departments=None if department is None else [department],
        )
    )
    panel = panel.select(recipe.series_mask(panel)) if panel.n_series else panel
    if panel.n_series == 0:
        return []
    # Each window sees exactly what the version would have been trained on at the cutoff: its
    # training window of days before it (the engine never reads past the cutoff).
    return walk_forward(
        algorithm=recipe.algorithm,
        hyperparameters=recipe.hyperparameters,
        panel=panel,
        cutoffs=cutoffs,
        horizon=window,
        overstock_tolerance=tenant_overstock_tolerance(),
        training_days=recipe.window_days,
        min_training_days=MIN_TRAINING_DAYS,
        promotions_known=PROMOTIONS_KNOWN_AHEAD,
        warm_start=warm_start,
    )


def walk_forward_warm_start(version: ModelVersion) -> WarmStart | None:
    """The warm start the version's weekly walk-forward uses: the default one where the tenant's
    policy asks for it and the version's family can continue a fit, else None (refit)."""
    if tenant_policy().walk_forward_warm_start and family(version.algorithm).warm_starts:
        return WarmStart()
    return None


def run_continuous_backtest(
    *,
    version: ModelVersion,
    days: int = WALK_FORWARD_DAYS,
    window: int = 7,
    end: dt.date | None = None,
) -> list[BacktestResult]:
    """Walk the version's recipe forward over the 13 weekly windows of the last 90 days (see
    `walk_forward_windows`) and store one walk_forward result per window with its
    per-department breakdown, replacing an earlier run's windows that overlap these. Returns
    the stored rows, oldest first. Raises ValueError when there are no sales."""
    warm_start = walk_forward_warm_start(version)
    windows = walk_forward_windows(
        version=version, days=days, window=window, end=end, warm_start=warm_start
    )
    return store_walk_forward(
        version=version, rows=[window_row(result, warm_start=warm_start) for result in windows]
    )


def window_row(result: WindowResult, *, warm_start: WarmStart | None) -> dict[str, Any]:
    """A walk-forward window as the fields of its `BacktestResult` (JSON-ready), with the mode
    that fit it."""
    return {
        "window_start": result.start,
        "window_end": result.end,
        "department_metrics": department_json(result.department_metrics),
        "mode": "refit" if warm_start is None else "warm_start",
        **result_fields(result.metrics),
    }


def store_walk_forward(
    *, version: ModelVersion, rows: list[dict[str, Any]]
) -> list[BacktestResult]:
    """Store a walk-forward's windows (`window_row`s, oldest first) in one transaction, replacing
    an earlier run's windows that overlap them. Returns the stored rows, oldest first."""
    with transaction.atomic():
        if rows:
            # A run anchored on another day leaves windows that straddle these; they would
            # count the same days twice in the trend.
            BacktestResult.objects.filter(
                model_version=version,
                kind=Kind.WALK_FORWARD,
                window_end__gte=rows[0]["window_start"],
                window_start__lte=rows[-1]["window_end"],
            ).exclude(
                window_start__in=[row["window_start"] for row in rows],
            ).delete()
        stored = store_backtest_results(version=version, kind=Kind.WALK_FORWARD, rows=rows)
    logger.info(
        "Walk-forward of %s %s [%s]: %d windows",
        version.name,
        version.version,
        version.segment,
        len(stored),
    )
    return stored


def check_backtest_degradation(*, version: ModelVersion):
    """Raise a `backtest_degradation` warning when the version's latest weekly walk-forward
    window has an MAE more than 10% above the window before it (one open warning per segment
    for its champions, updated as refreshes replace them); returns the alert or None."""
    from alerts.models import MLAlert
    from alerts.services import raise_alert

    latest, previous = (
        list(
            BacktestResult.objects.filter(
                model_version=version, kind=Kind.WALK_FORWARD, mae__isnull=False
            ).order_by("-window_end")[:2]
        )
        + [None, None]
    )[:2]
    if latest is None or previous is None or not previous.mae:
        return None
    change_pct = (latest.mae / previous.mae - 1.0) * 100.0
    if change_pct <= DEGRADATION_PCT:
        return None
    where = (
        version.name if version.segment == GLOBAL_SEGMENT else f"{version.name} [{version.segment}]"
    )
    return raise_alert(
        alert_type=MLAlert.AlertType.BACKTEST_DEGRADATION,
        severity=MLAlert.Severity.WARNING,
        title=f"Backtest degradation: {where} {version.version} MAE {change_pct:.1f}% worse "
        "week on week",
        message=(
            f"In the weekly walk-forward of {where} {version.version} ({version.status}), the "
            f"week {latest.window_start}..{latest.window_end} has MAE {latest.mae:.3f}, "
            f"{change_pct:.1f}% above the week before ({previous.mae:.3f}); the alert fires "
            f"above {DEGRADATION_PCT:.0f}%. Investigate the data of that week or the model."
        ),
        metadata={
            "version": version.version,
            "status": version.status,
            "window_start": latest.window_start.isoformat(),
            "window_end": latest.window_end.isoformat(),
            "mae": latest.mae,
            "previous_mae": previous.mae,
            "change_pct": round(change_pct, 2),
            "threshold_pct": DEGRADATION_PCT,
        },
        # A champion's alert is its segment's: the next week's refresh updates it while it is
        # open rather than opening another beside it.
        dedup_key=(
            f"backtest_degradation:{version.name}:{version.segment}"
            if version.status == Status.CHAMPION
            else f"backtest_degradation:modelversion:{version.pk}"
        ),
        model_version=version,
    )


def weekly_backtest_versions() -> list[ModelVersion]:
    """The versions the weekly walk-forward covers: every champion, and every challenger whose
    recipe is not one already covered in its name and segment. A walk-forward refits the
    recipe at each cutoff, so a challenger of the champion's recipe (a drift retrain, say)
    would repeat the champion's windows number for number, and its alerts with them."""
    versions = sorted(
        ModelVersion.objects.filter(status__in=WEEKLY_BACKTEST_STATUSES),
        key=lambda v: (v.name, v.segment, v.status != Status.CHAMPION, -v.version_number),
    )
    covered: dict[tuple[str, str], list[Recipe]] = {}
    walked = []
    for version in versions:
        recipe = Recipe.of(version)
        recipes = covered.setdefault((version.name, version.segment), [])
        if not any(recipe.same_as(other) for other in recipes):
            recipes.append(recipe)
            walked.append(version)
    return walked
