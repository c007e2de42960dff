"""The daily T-1 backtest: each version's stored forecasts of a day against the day's sales."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.db.models import Q

from forecasting import metrics
from forecasting.models import Forecast, Product, Sale, Store
from forecasting.panel import Panel
from forecasting.selectors import load_sales_panel
from mlops.models import BacktestResult, ModelVersion, ShadowPrediction
from mlops.selectors import forecast_matrix, latest_forecasts
from mlops.services.backtesting import (
    department_json,
    department_of,
    result_fields,
    store_backtest_results,
    tenant_overstock_tolerance,
)

logger = logging.getLogger(__name__)

Kind = BacktestResult.Kind
Status = ModelVersion.Status

# Versions whose forecasts are scored every day: the one serving and those waiting beside it.
T_MINUS_1_STATUSES = (Status.CHAMPION, Status.CHALLENGER, Status.SHADOW)
# A T-1 result's tracking signal runs over the week up to its day: over a single day it could
# only be the sign of each series' error.
TRACKING_SIGNAL_DAYS = 7


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
        tolerance = tenant_overstock_tolerance()
        retail = _retail_scores(
            day=day, version_ids=sorted(int(pk) for pk in forecasts["version_id"].unique())
        )
        active_cache: dict[str | None, pd.DataFrame] = {}
        for version_id, points in forecasts.groupby("version_id", sort=True):
            version = versions[int(version_id)]
            department = department_of(version.segment)
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
                        "department_metrics": department_json(breakdown),
                        **result_fields(overall),
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
