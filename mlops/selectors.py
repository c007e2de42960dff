"""Reads of the model registry: champions, history, backtest trends, forecasts and who served."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import numpy as np
import pandas as pd
from django.db import connection
from django.db.models import F, Prefetch, QuerySet

from forecasting.models import Forecast, Product, Store
from forecasting.panel import Panel
from mlops.models import (
    DEFAULT_MODEL_NAME,
    GLOBAL_SEGMENT,
    BacktestResult,
    ModelTransition,
    ModelVersion,
)
from tenants.selectors import tenant_policy

Status = ModelVersion.Status


def get_champion_model(*, name: str = DEFAULT_MODEL_NAME, segment: str = GLOBAL_SEGMENT):
    """The champion of name/segment, or None."""
    return ModelVersion.objects.filter(name=name, segment=segment, status=Status.CHAMPION).first()


def get_challenger_model(*, name: str = DEFAULT_MODEL_NAME, segment: str = GLOBAL_SEGMENT):
    """The newest challenger of name/segment, or None."""
    return (
        ModelVersion.objects.filter(name=name, segment=segment, status=Status.CHALLENGER)
        .order_by("-version_number")
        .first()
    )


def incumbent_for(*, name: str, segment: str) -> ModelVersion | None:
    """The champion that serves a segment's series now: its own, else the global champion."""
    return get_champion_model(name=name, segment=segment) or (
        get_champion_model(name=name, segment=GLOBAL_SEGMENT) if segment != GLOBAL_SEGMENT else None
    )


def model_history(*, name: str | None = None) -> QuerySet[ModelVersion]:
    """Every version (newest first per name), with its transitions prefetched oldest first and
    the labels of its parent and creator (`parent_label`, `created_by_username`). Its feature
    importance (kilobytes of JSON a version, not part of the history) is left in the database."""
    versions = ModelVersion.objects.defer("importance")
    if name is not None:
        versions = versions.filter(name=name)
    return versions.annotate(
        parent_label=F("parent__version"), created_by_username=F("created_by__username")
    ).prefetch_related(
        Prefetch("transitions", queryset=ModelTransition.objects.order_by("created_at", "pk"))
    )


def transition_history(version: ModelVersion) -> QuerySet[ModelTransition]:
    """A version's status changes, oldest first."""
    return version.transitions.order_by("created_at", "pk").select_related("actor")


def _transition_data(move: ModelTransition | None) -> dict[str, Any] | None:
    if move is None:
        return None
    return {
        "id": move.pk,
        "from_status": move.from_status,
        "to_status": move.to_status,
        "actor": move.actor_label,
        "reason": move.reason,
        "evidence": move.evidence,
        "created_at": move.created_at,
    }


def served_forecast(
    *, store: Store, product: Product, target_date: dt.date, name: str | None = None
) -> Forecast | None:
    """The forecast served for the series on that day (the latest one made for it, of model
    `name` when given), with its version."""
    forecasts = Forecast.objects.filter(
        store=store, product=product, target_date=target_date, served=True
    )
    if name is not None:
        forecasts = forecasts.filter(model_version__name=name)
    return (
        forecasts.select_related("model_version", "store", "product").order_by("-made_on").first()
    )


def served_by(*, store: Store, product: Product, date: dt.date) -> dict[str, Any] | None:
    """Which version produced the forecast served for this series and day (the latest one made
    for it), and the transition, with its evidence, that gave that version its role then."""
    forecast = served_forecast(store=store, product=product, target_date=date)
    if forecast is None:
        return None
    version = forecast.model_version
    tz = zoneinfo.ZoneInfo(tenant_policy().time_zone)
    end_of_made_on = dt.datetime.combine(
        forecast.made_on + dt.timedelta(days=1), dt.time.min, tzinfo=tz
    )
    moves = version.transitions.filter(created_at__lt=end_of_made_on).order_by("-created_at", "-pk")
    role_move = moves.first()
    champion_move = moves.filter(to_status=Status.CHAMPION).first()
    return {
        "store": store.code,
        "product": product.sku,
        "date": date,
        "made_on": forecast.made_on,
        "value": forecast.value,
        "lower": forecast.lower,
        "upper": forecast.upper,
        "version": {
            "id": version.pk,
            "name": version.name,
            "version": version.version,
            "segment": version.segment,
            "algorithm": version.algorithm,
            "status_now": version.status,
        },
        "status_then": role_move.to_status if role_move else None,
        "transition": _transition_data(role_move),
        "champion_transition": _transition_data(champion_move),
    }


# -- backtests ----------------------------------------------------------------------------------

TREND_FIELDS = ("window_start", "window_end", "mode", *BacktestResult.METRIC_FIELDS)


# The weekly walk-forward covers the 90 days up to the latest sales day (13 windows, 91 days):
# run_continuous_backtest stores it, get_backtest_trend shows it.
WALK_FORWARD_DAYS = 90
TREND_DAYS = 90


def get_backtest_trend(
    *,
    version: ModelVersion,
    days: int | None = None,
    kind: str = BacktestResult.Kind.WALK_FORWARD,
) -> list[dict[str, Any]]:
    """The version's backtest results of `kind`, oldest first: one dict per window with its
    dates, metrics and point counts (the series behind the backtest charts and
    GET /models/backtest/{version}). With `days`, the windows that start within the `days` up
    to its latest one; without, every window of its latest walk-forward (for T-1 and shadow
    results, the last TREND_DAYS)."""
    rows = BacktestResult.objects.filter(model_version=version, kind=kind)
    latest = rows.order_by("-window_end").values_list("window_end", flat=True).first()
    if latest is None:
        return []
    if days is not None:
        rows = rows.filter(window_start__gt=latest - dt.timedelta(days=days))
    elif kind == BacktestResult.Kind.WALK_FORWARD:
        from forecasting.backtesting import weekly_cutoffs

        rows = rows.filter(window_start__gte=weekly_cutoffs(latest, days=WALK_FORWARD_DAYS)[0])
    else:
        rows = rows.filter(window_start__gt=latest - dt.timedelta(days=TREND_DAYS))
    return list(rows.order_by("window_start", "window_end").values(*TREND_FIELDS))


def refresh_lineage(champion: ModelVersion) -> list[ModelVersion]:
    """The champion and the champions its refreshes replaced, newest first, back to the version
    that began the run of its recipe (a first model, a recipe change, a review or an override):
    one model in service, refreshed every week, whose drift is watched as one."""
    from mlops.models import DecisionKind

    chain, current = [champion], champion
    while current.decision_kind == DecisionKind.REFRESH and current.parent_id is not None:
        parent = current.parent
        if (parent.name, parent.segment) != (current.name, current.segment) or parent in chain:
            break
        chain.append(parent)
        current = parent
    return chain


def t_minus_1_results(
    *,
    version: ModelVersion | None = None,
    versions: list[ModelVersion] | None = None,
    after: dt.date | None = None,
    until: dt.date | None = None,
    days: int | None = None,
    first: int | None = None,
    scored: bool = False,
) -> list[BacktestResult]:
    """The version's daily T-1 results, oldest first: days after `after`, up to `until`,
    within the `days` that end on `until` (or on its latest result), only days with a scored
    point when `scored`, and at most the `first` of those. With `versions` (a refresh lineage)
    each day's result is that of the newest of them scored that day."""
    chain = versions if versions is not None else [version]
    rows = BacktestResult.objects.filter(
        model_version__in=[each.pk for each in chain], kind=BacktestResult.Kind.T_MINUS_1
    )
    if scored:
        rows = rows.filter(n_points__gt=0)
    if after is not None:
        rows = rows.filter(window_end__gt=after)
    if until is not None:
        rows = rows.filter(window_end__lte=until)
    if days is not None:
        end = until or rows.order_by("-window_end").values_list("window_end", flat=True).first()
        if end is None:
            return []
        rows = rows.filter(window_end__gt=end - dt.timedelta(days=days))
    rows = rows.order_by("window_end", "-model_version__version_number")
    if len(chain) > 1:
        # Keep one result per day (the newest version's): a champion and its refresh never
        # forecast the same day, but a re-run might have scored both.
        unique = list({row.window_end: row for row in reversed(list(rows))}.values())
        rows = sorted(unique, key=lambda row: row.window_end)
    return list(rows[:first] if first is not None else rows)


def rollback_target(*, name: str, segment: str) -> ModelVersion | None:
    """The former champion a rollback of name/segment would restore (the last one retired,
    if still archived), or None."""
    last_retirement = (
        ModelTransition.objects.filter(
            model_version__name=name,
            model_version__segment=segment,
            from_status=ModelVersion.Status.CHAMPION,
            to_status=ModelVersion.Status.ARCHIVED,
        )
        .select_related("model_version")
        .order_by("-created_at", "-pk")
        .first()
    )
    if (
        last_retirement is None
        or last_retirement.model_version.status != ModelVersion.Status.ARCHIVED
    ):
        return None
    return last_retirement.model_version


# -- stored forecasts ---------------------------------------------------------------------------


FORECAST_FRAME_COLUMNS = [
    "version_id",
    "store",
    "product",
    "target_date",
    "value",
    "lower",
    "upper",
]


def latest_forecasts(*, version_ids: list[int], start: dt.date, end: dt.date) -> pd.DataFrame:
    """Each version's stored forecast of every series and target day from `start` to `end`, from
    its latest run made on or before the target day (a run made on the day itself read the
    sales before it: one day ahead, what the T-1 backtest scores). Columns: version_id, store
    (code), product (sku), target_date, value, lower, upper."""
    if not version_ids:
        return pd.DataFrame(columns=FORECAST_FRAME_COLUMNS)
    return _forecast_frame(
        latest_by="model_version_id, target_date",
        where="model_version_id = ANY(%(versions)s)",
        params={"start": start, "end": end, "versions": list(version_ids)},
    )


def served_forecasts(*, start: dt.date, end: dt.date) -> pd.DataFrame:
    """The forecast served for every series and target day from `start` to `end` (from the
    latest run made on or before the day), whichever version served it: what people stocked
    to. Columns as `latest_forecasts`."""
    return _forecast_frame(
        latest_by="target_date", where="served", params={"start": start, "end": end}
    )


def _forecast_frame(*, latest_by: str, where: str, params: dict[str, Any]) -> pd.DataFrame:
    forecast, store, product = (
        Forecast._meta.db_table,
        Store._meta.db_table,
        Product._meta.db_table,
    )
    joined = " AND ".join(
        f"l.{column.strip()} = f.{column.strip()}" for column in latest_by.split(",")
    )
    sql = f"""
        WITH latest AS (
            SELECT {latest_by}, MAX(made_on) AS made_on
            FROM {forecast}
            WHERE target_date BETWEEN %(start)s AND %(end)s AND made_on <= target_date
              AND {where}
            GROUP BY {latest_by}
        )
        SELECT f.model_version_id, s.code, p.sku, f.target_date, f.value, f.lower, f.upper
        FROM {forecast} f
        JOIN latest l ON {joined} AND l.made_on = f.made_on
        JOIN {store} s ON s.id = f.store_id
        JOIN {product} p ON p.id = f.product_id
        WHERE f.{where}
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return pd.DataFrame(rows, columns=FORECAST_FRAME_COLUMNS)


def forecast_matrix(
    forecasts: pd.DataFrame, *, panel: Panel, version_id: int | None = None, column: str = "value"
) -> np.ndarray:
    """Stored forecasts (one version's, or every row's) laid out as the panel,
    [n_series, n_days] (NaN where there is none)."""
    matrix = np.full(panel.quantity.shape, np.nan, dtype=np.float64)
    mine = forecasts if version_id is None else forecasts[forecasts["version_id"] == version_id]
    if mine.empty or not panel.n_days:
        return matrix
    rows = panel.series_positions(
        stores=mine["store"].to_numpy(), products=mine["product"].to_numpy()
    )
    first = np.datetime64(panel.dates[0].date(), "D")
    days = (np.asarray(mine["target_date"].to_numpy(), dtype="datetime64[D]") - first).astype(
        np.int64
    )
    inside = (rows >= 0) & (days >= 0) & (days < panel.n_days)
    matrix[rows[inside], days[inside]] = mine[column].to_numpy(dtype=np.float64)[inside]
    return matrix
