"""Continuous backtests: the weekly 90-day walk-forward of a version's recipe, and the daily T-1
comparison of stored forecasts with the sales that came in."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.db.models import Q

from forecasting import metrics
from forecasting.backtesting import WindowResult, walk_forward, weekly_cutoffs
from forecasting.families import family
from forecasting.families.base import WarmStart
from forecasting.models import Forecast, Product, Sale, Store
from forecasting.panel import Panel
from forecasting.selectors import load_sales_panel
from mlops.health_cache import forget_model_health
from mlops.models import GLOBAL_SEGMENT, BacktestResult, ModelVersion, ShadowPrediction
from mlops.selectors import WALK_FORWARD_DAYS, forecast_matrix, latest_forecasts
from mlops.services.data import PROMOTIONS_KNOWN_AHEAD, latest_sales_day, with_known_inputs
from mlops.services.evaluation import Recipe
from tenants.selectors import tenant_policy

logger = logging.getLogger(__name__)

Kind = BacktestResult.Kind
Status = ModelVersion.Status

# Versions whose forecasts are scored every day: the one serving and those waiting beside it.
T_MINUS_1_STATUSES = (Status.CHAMPION, Status.CHALLENGER, Status.SHADOW)
# Versions the weekly walk-forward covers.
WEEKLY_BACKTEST_STATUSES = (Status.CHAMPION, Status.CHALLENGER)
# A window whose training history is shorter than this is skipped (nothing sensible to fit).
MIN_TRAINING_DAYS = 14
# backtest_degradation: the latest weekly window's MAE against the week before it.
DEGRADATION_PCT = 10.0
# A T-1 result's tracking signal runs over the week up to its day: over a single day it could
# only be the sign of each series' error.
TRACKING_SIGNAL_DAYS = 7


def _tenant_overstock_tolerance() -> float:
    return float(tenant_policy().overstock_tolerance)


def _department_of(segment: str) -> str | None:
    """The department a segment is, or None (global, or a demand class: any department)."""
    return segment.split(":", 1)[1] if segment.startswith("department:") else None


def _json_number(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _result_fields(values: dict[str, Any]) -> dict[str, Any]:
    fields = {name: _json_number(values.get(name)) for name in BacktestResult.METRIC_FIELDS}
    fields["n_points"] = int(fields["n_points"] or 0)
    fields["n_missing"] = int(fields["n_missing"] or 0)
    return fields


def _department_json(breakdown: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
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
    department = _department_of(recipe.segment)
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
        overstock_tolerance=_tenant_overstock_tolerance(),
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
        "department_metrics": _department_json(result.department_metrics),
        "mode": "refit" if warm_start is None else "warm_start",
        **_result_fields(result.metrics),
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
    window has an MAE more than 10% above the window before it; returns the alert or None."""
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
        dedup_key=f"backtest_degradation:modelversion:{version.pk}",
        model_version=version,
    )


def weekly_backtest_versions() -> list[ModelVersion]:
    """Every champion and challenger, the versions the weekly walk-forward covers."""
    return list(
        ModelVersion.objects.filter(status__in=WEEKLY_BACKTEST_STATUSES).order_by(
            "name", "segment", "-version_number"
        )
    )


# -- daily T-1 -----------------------------------------------------------------------------------


def _latest_forecasts(*, day: dt.date, version_ids: list[int]) -> pd.DataFrame:
    """Each version's forecasts for `day` from its latest run made on or before it (made on
    `day` itself means made that morning from the sales before it: one day ahead)."""
    forecast = Forecast._meta.db_table
    product = Product._meta.db_table
    sql = f"""
        WITH latest AS (
            SELECT model_version_id, MAX(made_on) AS made_on
            FROM {forecast}
            WHERE target_date = %(day)s AND made_on <= %(day)s
              AND model_version_id = ANY(%(versions)s)
            GROUP BY model_version_id
        )
        SELECT f.model_version_id, f.store_id, f.product_id, p.department, f.made_on,
               f.value, f.lower, f.upper
        FROM {forecast} f
        JOIN latest l ON l.model_version_id = f.model_version_id AND l.made_on = f.made_on
        JOIN {product} p ON p.id = f.product_id
        WHERE f.target_date = %(day)s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, {"day": day, "versions": version_ids})
        rows = cursor.fetchall()
    return pd.DataFrame(
        rows,
        columns=[
            "version_id",
            "store_id",
            "product_id",
            "department",
            "made_on",
            "value",
            "lower",
            "upper",
        ],
    )


def _actuals(*, day: dt.date, forecasts: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The actual of each forecast row: the sale, 0 when its store reported other sales that
    day, NaN when the store sent nothing (unknown, not zero); which rows were censored (a zero
    sale while out of stock: demand unknown, not scored); and the stores that did not
    report."""
    sales = pd.DataFrame(
        list(
            Sale.objects.filter(date=day).values_list(
                "store_id", "product_id", "quantity", "in_stock"
            )
        ),
        columns=["store_id", "product_id", "quantity", "in_stock"],
    )
    reported = set(sales["store_id"].unique().tolist())
    known = forecasts[["store_id", "product_id"]].merge(
        sales, on=["store_id", "product_id"], how="left"
    )
    actual = known["quantity"].to_numpy(dtype=np.float64, na_value=np.nan)
    store_reported = forecasts["store_id"].isin(reported).to_numpy()
    actual = np.where(np.isnan(actual) & store_reported, 0.0, actual)
    actual[~store_reported] = np.nan
    out_of_stock = known["in_stock"].eq(False).to_numpy()
    censored = out_of_stock & (actual == 0)
    silent = sorted(set(forecasts["store_id"].unique().tolist()) - reported)
    return actual, censored, silent


def _active_series(*, day: dt.date, department: str | None) -> pd.DataFrame:
    """Series that sold anything in the 28 days before `day` (those a model should forecast)."""
    sales = Sale.objects.filter(
        date__gte=day - dt.timedelta(days=metrics.ACTIVE_SERIES_DAYS),
        date__lt=day,
        quantity__gt=0,
    )
    if department is not None:
        sales = sales.filter(product__department=department)
    return pd.DataFrame(
        list(sales.values_list("store_id", "product_id", "product__department").distinct()),
        columns=["store_id", "product_id", "department"],
    )


def _series_coverage(*, points: pd.DataFrame, active: pd.DataFrame) -> float | None:
    """Share of the active series that have a forecast among `points`."""
    forecast_keys = pd.MultiIndex.from_frame(points[["store_id", "product_id"]])
    active_keys = pd.MultiIndex.from_frame(active[["store_id", "product_id"]])
    return metrics.coverage(
        active=np.ones(len(active_keys), dtype=bool), forecasted=active_keys.isin(forecast_keys)
    )


def _score_day(
    *, points: pd.DataFrame, active: pd.DataFrame, tolerance: float
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Metrics of one version's points of one day, overall and per department."""

    def score(frame: pd.DataFrame, active_here: pd.DataFrame) -> dict[str, Any]:
        values = metrics.compute_all(
            frame["actual"].to_numpy(),
            frame["value"].to_numpy(dtype=np.float64),
            lower=frame["lower"].to_numpy(dtype=np.float64),
            upper=frame["upper"].to_numpy(dtype=np.float64),
            overstock_tolerance=tolerance,
            censored=frame["censored"].to_numpy(dtype=bool),
        )
        values["coverage"] = _series_coverage(points=frame, active=active_here)
        return values

    breakdown = {
        str(department): score(group, active[active["department"] == department])
        for department, group in points.groupby("department")
    }
    return score(points, active), breakdown


def _retail_scores(
    *, day: dt.date, version_ids: list[int]
) -> dict[int, tuple[dict[str, Any], dict[str, dict[str, Any]]]]:
    """Each version's retail pack for `day`, overall and per department, over the series it
    forecast that day: FVA, MASE, RMSSE and wQL of the day, scaled by (and the seasonal-naive
    forecast read from) the sales of the SCALE_HISTORY_DAYS before it; the tracking signal of
    the TRACKING_SIGNAL_DAYS up to it. Empty when no sales came in that day."""
    panel = load_sales_panel(start=day - dt.timedelta(days=metrics.SCALE_HISTORY_DAYS), end=day)
    if not panel.n_days or panel.last_day.date() != day:
        return {}
    stored = latest_forecasts(
        version_ids=version_ids,
        start=day - dt.timedelta(days=TRACKING_SIGNAL_DAYS - 1),
        end=day,
    )
    today = panel.n_days - 1
    week = slice(max(today - TRACKING_SIGNAL_DAYS + 1, 0), today + 1)
    scores = {}
    for version_id in version_ids:
        forecast, lower, upper = (
            forecast_matrix(stored, panel=panel, version_id=version_id, column=column)
            for column in ("value", "lower", "upper")
        )
        forecast_today = ~np.isnan(forecast[:, today])
        stored_values = {"forecast": forecast, "lower": lower, "upper": upper}
        scores[version_id] = (
            _retail_pack(panel=panel, rows=forecast_today, today=today, week=week, **stored_values),
            {
                str(department): _retail_pack(
                    panel=panel,
                    rows=forecast_today & (panel.departments == department),
                    today=today,
                    week=week,
                    **stored_values,
                )
                for department in np.unique(panel.departments[forecast_today])
            },
        )
    return scores


def _retail_pack(
    *,
    panel: Panel,
    rows: np.ndarray,
    forecast: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    today: int,
    week: slice,
) -> dict[str, Any]:
    """The retail pack of the panel `rows` on the day at column `today`."""
    values = metrics.compute_all(
        panel.quantity[rows, today:],
        forecast[rows, today:],
        lower=lower[rows, today:],
        upper=upper[rows, today:],
        history=panel.quantity[rows, :today],
    )
    pack = {name: values[name] for name in metrics.RETAIL_METRICS}
    pack["tracking_signal"] = metrics.tracking_signal(
        panel.quantity[rows, week], forecast[rows, week]
    )
    return pack


def _fill_shadow_actuals(*, day: dt.date) -> int:
    """Write the actual into every shadow prediction for `day` whose store reported (0 for a
    product it did not sell; none where the demand was censored by a stock-out); one
    UPDATE ... FROM. Returns the rows updated."""
    shadow = ShadowPrediction._meta.db_table
    sale = Sale._meta.db_table
    sql = f"""
        UPDATE {shadow} AS sp
        SET actual = src.actual
        FROM (
            SELECT sp2.id, COALESCE(s.quantity, 0)::double precision AS actual
            FROM {shadow} sp2
            JOIN (SELECT DISTINCT store_id FROM {sale} WHERE date = %(day)s) reported
              ON reported.store_id = sp2.store_id
            LEFT JOIN {sale} s
              ON s.store_id = sp2.store_id AND s.product_id = sp2.product_id
             AND s.date = sp2.target_date
            WHERE sp2.target_date = %(day)s
              -- censored demand (nothing sold, nothing on the shelf) has no actual
              AND NOT (s.quantity IS NOT NULL AND s.quantity = 0 AND NOT s.in_stock)
        ) AS src
        WHERE sp.id = src.id AND sp.actual IS DISTINCT FROM src.actual
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, {"day": day})
        return cursor.rowcount


def backtest_yesterday(*, day: dt.date) -> list[BacktestResult]:
    """Score the forecasts stored for `day` (each version's latest run made on or before it)
    against the day's sales, for the champion and every challenger and shadow, and a champion
    that served the day and retired since, as
    t_minus_1 results (window_start = window_end = day; a re-run replaces them), and fill in
    the actual of the day's shadow predictions. A store that sent no sales that day leaves its
    points unknown (counted in n_missing, never scored as zero). Returns the stored rows."""
    # The active versions, and any that served the day and retired since (a champion
    # refreshed on Sunday morning served Saturday: its Saturday is scored all the same).
    forecast_the_day = Forecast.objects.filter(
        target_date=day, made_on__lte=day, served=True
    ).values("model_version")
    versions = {
        version.pk: version
        for version in ModelVersion.objects.filter(
            Q(status__in=T_MINUS_1_STATUSES) | Q(pk__in=forecast_the_day)
        )
    }
    stored: list[BacktestResult] = []
    with transaction.atomic():
        updated = _fill_shadow_actuals(day=day)
        forecasts = _latest_forecasts(day=day, version_ids=list(versions)) if versions else None
        if forecasts is None or forecasts.empty:
            logger.info("T-1 backtest of %s: no forecasts for that day", day)
            return []
        forecasts["actual"], forecasts["censored"], silent = _actuals(day=day, forecasts=forecasts)
        if silent:
            codes = dict(Store.objects.filter(pk__in=silent).values_list("pk", "code"))
            logger.warning(
                "T-1 backtest of %s: %d store(s) sent no sales that day (%s); their forecasts "
                "are counted as missing, not scored",
                day,
                len(silent),
                ", ".join(str(codes.get(pk, pk)) for pk in silent[:20]),
            )
        tolerance = _tenant_overstock_tolerance()
        retail = _retail_scores(
            day=day, version_ids=sorted(int(pk) for pk in forecasts["version_id"].unique())
        )
        active_cache: dict[str | None, pd.DataFrame] = {}
        for version_id, points in forecasts.groupby("version_id", sort=True):
            version = versions[int(version_id)]
            department = _department_of(version.segment)
            if department not in active_cache:
                active_cache[department] = _active_series(day=day, department=department)
            overall, breakdown = _score_day(
                points=points, active=active_cache[department], tolerance=tolerance
            )
            retail_overall, retail_breakdown = retail.get(int(version_id), ({}, {}))
            overall.update(retail_overall)
            for name, values in retail_breakdown.items():
                breakdown.setdefault(name, {}).update(values)
            stored += store_backtest_results(
                version=version,
                kind=Kind.T_MINUS_1,
                rows=[
                    {
                        "window_start": day,
                        "window_end": day,
                        "department_metrics": _department_json(breakdown),
                        **_result_fields(overall),
                    }
                ],
            )
    logger.info(
        "T-1 backtest of %s: %d version(s) scored, %d shadow prediction(s) given actuals",
        day,
        len(stored),
        updated,
    )
    return stored
