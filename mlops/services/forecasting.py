"""The daily forecast: every active version forecasts the next days of every series it covers."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from django.db import transaction
from django.utils import timezone

from forecasting import metrics
from forecasting.demand_classes import CLASS_DAYS
from forecasting.models import Forecast, Product, Store
from forecasting.pgcopy import copy_in_frame, refresh_statistics
from forecasting.services.demand_classes import record_demand_classes
from mlops.models import ModelVersion, ShadowPrediction
from mlops.services.data import FORECAST_HISTORY_DAYS, load_panel
from mlops.services.registry import load_model
from mlops.services.routing import ACTIVE_STATUSES, RoutingTable, covers

logger = logging.getLogger(__name__)

FORECAST_COLUMNS = (
    "model_version_id",
    "store_id",
    "product_id",
    "made_on",
    "target_date",
    "value",
    "lower",
    "upper",
    "served",
)
SHADOW_COLUMNS = (
    "key",
    "store_id",
    "product_id",
    "target_date",
    "champion_version_id",
    "champion_value",
    "challenger_version_id",
    "challenger_value",
    "created_at",
)


def daily_shadow_key(day: dt.date) -> str:
    return f"daily:{day.isoformat()}"


@dataclass
class ForecastRunSummary:
    """What one daily forecast run wrote."""

    day: dt.date
    horizon: int
    active_series: int = 0
    forecast_rows: int = 0
    served_rows: int = 0
    shadow_rows: int = 0
    unrouted_series: int = 0
    versions: list[dict[str, Any]] = field(default_factory=list)
    failed_versions: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def _history_days(versions: list[ModelVersion]) -> int:
    # A sequence model reads `lookback_days` before the first target day; add four weeks so
    # the active-series rule and the weekly fallbacks always have their history. Demand
    # classes are read from the last CLASS_DAYS days, and the intermittent family reads its
    # `history_days`.
    lookbacks = [
        int(v.hyperparameters.get("lookback_days") or v.hyperparameters.get("history_days") or 0)
        for v in versions
    ]
    return max([FORECAST_HISTORY_DAYS, CLASS_DAYS, *(lookback + 28 for lookback in lookbacks)])


def forecast_next_days(
    *, day: dt.date, horizon: int = 7, name: str | None = None
) -> ForecastRunSummary:
    """Have every active version (champion, challenger, shadow) forecast `horizon` days from
    `day` for every active series (sold in the 28 days before `day`) its segment covers; the
    routed version's rows are marked served and the others' answers are logged as shadow
    predictions beside the served value. A second run for the same day replaces the first.
    Returns what was written."""
    started = time.perf_counter()
    summary = ForecastRunSummary(day=day, horizon=horizon)
    versions_qs = ModelVersion.objects.filter(status__in=ACTIVE_STATUSES)
    if name is not None:
        versions_qs = versions_qs.filter(name=name)
    names = sorted(set(versions_qs.values_list("name", flat=True)))
    if not names:
        return summary
    tables = {each: RoutingTable.load(name=each) for each in names}
    all_versions = [version for table in tables.values() for version in table.versions]
    history_start = day - dt.timedelta(days=_history_days(all_versions))
    panel = load_panel(
        start=history_start,
        end=day - dt.timedelta(days=1),
        through=day + dt.timedelta(days=horizon - 1),
    )
    if panel.n_series == 0:
        return summary
    # The target days' promotions as planned by the start of `day` (see Panel.as_seen_at).
    panel = panel.select(metrics.active_series(panel.until(day).quantity)).as_seen_at(day)
    summary.active_series = panel.n_series
    series_class = record_demand_classes(panel=panel, as_of=day).classes
    series_store, series_product, series_department = _series_ids(panel)
    target_dates = [day + dt.timedelta(days=step) for step in range(horizon)]

    forecast_frames, shadow_frames = [], []
    for each in names:
        forecasts, shadows = _forecast_model(
            table=tables[each],
            panel=panel,
            day=day,
            target_dates=target_dates,
            series=(series_store, series_product, series_department, series_class),
            summary=summary,
        )
        forecast_frames.extend(forecasts)
        shadow_frames.extend(shadows)

    forecasts = pd.concat(forecast_frames, ignore_index=True) if forecast_frames else None
    shadows = pd.concat(shadow_frames, ignore_index=True) if shadow_frames else None
    _replace_day_rows(
        day=day,
        version_pks=[version.pk for version in all_versions],
        forecasts=forecasts,
        shadows=shadows,
    )
    summary.forecast_rows = 0 if forecasts is None else len(forecasts)
    summary.served_rows = 0 if forecasts is None else int(forecasts["served"].sum())
    summary.shadow_rows = 0 if shadows is None else len(shadows)
    summary.seconds = time.perf_counter() - started
    return summary


def _forecast_model(
    *,
    table: RoutingTable,
    panel,
    day: dt.date,
    target_dates: list[dt.date],
    series: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    summary: ForecastRunSummary,
) -> tuple[list[pd.DataFrame], list[pd.DataFrame]]:
    """Every version of one model name forecasts the series it covers (each series' store id,
    product id, department and demand class in `series`); returns the forecast rows and the
    shadow predictions beside the served values, and notes each version's outcome in
    `summary`."""
    series_store, series_product, series_department, series_class = series
    horizon = len(target_dates)
    served_pk = _served_versions(
        table=table,
        stores=series_store,
        products=series_product,
        departments=series_department,
        classes=series_class,
    )
    summary.unrouted_series += int((served_pk < 0).sum())
    values: dict[int, np.ndarray] = {}
    forecast_frames = []
    for version in table.versions:
        covered = zip(series_department, series_class, strict=True)
        mask = np.array([covers(version, str(d), c) for d, c in covered], dtype=bool)
        if not mask.any():
            continue
        try:
            forecasts = load_model(version).predict(panel.select(mask), day, horizon=horizon)
        except Exception as error:
            # One broken version (a lost artifact) must not stop the others' forecasts.
            logger.exception("%s could not forecast %s", version, day)
            summary.failed_versions.append(
                {"id": version.pk, "version": version.version, "error": repr(error)}
            )
            continue
        values[version.pk], frame = _version_rows(
            version=version,
            forecasts=forecasts,
            mask=mask,
            served=served_pk == version.pk,
            day=day,
            target_dates=target_dates,
            stores=series_store,
            products=series_product,
        )
        forecast_frames.append(frame)
        summary.versions.append(_version_line(version, series=int(mask.sum()), frame=frame))
    shadow_frames = _shadow_frames(
        table=table,
        values=values,
        served_pk=served_pk,
        day=day,
        target_dates=target_dates,
        stores=series_store,
        products=series_product,
    )
    return forecast_frames, shadow_frames


def _series_ids(panel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each series' store id, product id and department, from the panel's codes and SKUs."""
    store_ids = dict(Store.objects.values_list("code", "id"))
    products = {
        sku: (pk, dept) for sku, pk, dept in Product.objects.values_list("sku", "id", "department")
    }
    series_store = np.array([store_ids[str(code)] for code in panel.stores], dtype=np.int64)
    series_product = np.array([products[str(sku)][0] for sku in panel.products], dtype=np.int64)
    series_department = np.array([products[str(sku)][1] for sku in panel.products], dtype=object)
    return series_store, series_product, series_department


def _version_rows(
    *,
    version: ModelVersion,
    forecasts,
    mask: np.ndarray,
    served: np.ndarray,
    day: dt.date,
    target_dates: list[dt.date],
    stores: np.ndarray,
    products: np.ndarray,
) -> tuple[np.ndarray, pd.DataFrame]:
    """One version's forecasts spread over every series (NaN where it does not cover them), and
    its forecast rows, `served` where the routing sends the series to it."""
    n_series, horizon = len(mask), len(target_dates)
    full = np.full((n_series, horizon), np.nan, dtype=np.float64)
    full[mask] = forecasts.values
    lower = np.full_like(full, np.nan)
    upper = np.full_like(full, np.nan)
    lower[mask], upper[mask] = forecasts.lower, forecasts.upper
    frame = _forecast_frame(
        version=version,
        day=day,
        target_dates=target_dates,
        stores=stores,
        products=products,
        values=full,
        lower=lower,
        upper=upper,
        served=np.repeat(served[:, None], horizon, axis=1),
    )
    return full, frame


def _version_line(version: ModelVersion, *, series: int, frame: pd.DataFrame) -> dict[str, Any]:
    """What the run's summary says of one version's forecasts."""
    return {
        "id": version.pk,
        "name": version.name,
        "version": version.version,
        "status": version.status,
        "series": series,
        "rows": len(frame),
        "served_rows": int(frame["served"].sum()),
    }


def _replace_day_rows(
    *,
    day: dt.date,
    version_pks: list[int],
    forecasts: pd.DataFrame | None,
    shadows: pd.DataFrame | None,
) -> None:
    """Replace the versions' forecasts and shadow predictions made on `day` with the new ones."""
    with transaction.atomic():
        # Delete and COPY in one transaction: readers see the old rows or the new, never none.
        Forecast.objects.filter(model_version__in=version_pks, made_on=day).delete()
        ShadowPrediction.objects.filter(
            key=daily_shadow_key(day), challenger_version__in=version_pks
        ).delete()
        if forecasts is not None:
            copy_in_frame(table=Forecast._meta.db_table, columns=FORECAST_COLUMNS, frame=forecasts)
        if shadows is not None:
            copy_in_frame(
                table=ShadowPrediction._meta.db_table, columns=SHADOW_COLUMNS, frame=shadows
            )
    refresh_statistics(Forecast._meta.db_table, ShadowPrediction._meta.db_table)


def _served_versions(
    *,
    table: RoutingTable,
    stores: np.ndarray,
    products: np.ndarray,
    departments: np.ndarray,
    classes: np.ndarray,
) -> np.ndarray:
    """The pk of the version that serves each series (-1 where none does)."""
    served = [
        table.route(store_id=int(s), product_id=int(p), department=str(d), demand_class=c).version
        for s, p, d, c in zip(stores, products, departments, classes, strict=True)
    ]
    return np.array([getattr(version, "pk", -1) for version in served], dtype=np.int64)


def _forecast_frame(
    *,
    version: ModelVersion,
    day: dt.date,
    target_dates: list[dt.date],
    stores: np.ndarray,
    products: np.ndarray,
    values: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    served: np.ndarray,
) -> pd.DataFrame:
    horizon = len(target_dates)
    frame = pd.DataFrame(
        {
            "model_version_id": version.pk,
            "store_id": np.repeat(stores, horizon),
            "product_id": np.repeat(products, horizon),
            "made_on": day,
            "target_date": np.tile(np.array(target_dates, dtype=object), len(stores)),
            "value": values.reshape(-1),
            "lower": lower.reshape(-1),
            "upper": upper.reshape(-1),
            "served": served.reshape(-1),
        },
        columns=FORECAST_COLUMNS,
    )
    # A series the version does not cover (or could not forecast) gets no row.
    return frame[~np.isnan(frame["value"].to_numpy())]


def _shadow_frames(
    *,
    table: RoutingTable,
    values: dict[int, np.ndarray],
    served_pk: np.ndarray,
    day: dt.date,
    target_dates: list[dt.date],
    stores: np.ndarray,
    products: np.ndarray,
) -> list[pd.DataFrame]:
    """Each non-champion version's answer beside the served one, for the series it shadows."""
    frames = []
    horizon = len(target_dates)
    now = timezone.now()
    for version in table.versions:
        if version.status == ModelVersion.Status.CHAMPION or version.pk not in values:
            continue
        mine = values[version.pk]
        served_values = np.full_like(mine, np.nan)
        for pk in np.unique(served_pk):
            if pk < 0 or pk == version.pk or pk not in values:
                continue
            rows = served_pk == pk
            served_values[rows] = values[pk][rows]
        frame = pd.DataFrame(
            {
                "key": daily_shadow_key(day),
                "store_id": np.repeat(stores, horizon),
                "product_id": np.repeat(products, horizon),
                "target_date": np.tile(np.array(target_dates, dtype=object), len(stores)),
                "champion_version_id": np.repeat(served_pk, horizon),
                "champion_value": served_values.reshape(-1),
                "challenger_version_id": version.pk,
                "challenger_value": mine.reshape(-1),
                "created_at": now,
            },
            columns=SHADOW_COLUMNS,
        )
        known = ~np.isnan(frame["champion_value"].to_numpy()) & ~np.isnan(
            frame["challenger_value"].to_numpy()
        )
        frames.append(frame[known])
    return frames
