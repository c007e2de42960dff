"""Data for admin tests, built with the real services: sales, fitted versions, backtests, alerts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from alerts.models import MLAlert
from alerts.services import raise_alert
from forecasting.families import build_model
from forecasting.importance import fit_measuring_importance
from forecasting.models import Forecast, Product, Sale, Store
from forecasting.services import import_sales
from forecasting.synthetic import generate_sales
from mlops.models import BacktestResult, DriftIncident, ModelRetrainingLog, ModelVersion, Trigger
from mlops.services import make_challenger, register_model_version
from mlops.services.backtesting import run_continuous_backtest, store_backtest_results
from mlops.services.data import load_panel
from mlops.services.evaluation import evaluate_for_promotion
from tests.mlops.factories import ModelVersionFactory
from tests.tenancy import PASSWORD

# Small enough to fit in a second, long enough for 90 days of weekly windows after a
# training window.
STORES, PRODUCTS, DAYS = 2, 4, 150
CHALLENGER_RECIPES = {
    "seasonal_naive": {"calibration_windows": 2},
    "xgboost": {"n_estimators": 20, "max_depth": 3, "calibration_windows": 1},
}
# The challenger's chart rows are the champion's windows scaled by this (a 13-window XGBoost
# walk-forward would cost a minute of refits per test; the chart only needs two series).
CHALLENGER_ERROR_RATIO = 0.86


def staff_user(role: str, username: str | None = None):
    """A tenant user who may log in to the admin, in one role group."""
    user = get_user_model().objects.create_user(
        username or role, f"{username or role}@acme.example", PASSWORD, is_staff=True
    )
    user.groups.add(Group.objects.get(name=role))
    return user


@dataclass
class Arena:
    champion: ModelVersion
    challenger: ModelVersion
    last_day: dt.date


def _register(
    *, algorithm: str, hyperparameters: dict, panel, parent=None, with_importance: bool = False
) -> ModelVersion:
    model = build_model(algorithm, **hyperparameters)
    # As a retrain measures it, when asked (it costs a second or two per version).
    importance = fit_measuring_importance(model, panel) if with_importance else None
    if importance is None:
        model.fit(panel)
    return register_model_version(
        algorithm=algorithm,
        model=model,
        importance=importance,
        parent=parent,
        training_start=panel.first_day.date(),
        training_end=panel.last_day.date(),
        training_rows=int((~np.isnan(panel.quantity)).sum()),
    )


SCALED_FIELDS = ("mae", "mape", "wape")
COPIED_FIELDS = (
    "bias",
    "stockout_miss_rate",
    "overstock_rate",
    "coverage",
    "interval_coverage",
    "n_points",
    "n_missing",
)


def scaled_copy(
    version: ModelVersion, *, rows: list[BacktestResult], ratio: float
) -> list[BacktestResult]:
    """Walk-forward results for `version` whose errors are `rows`' times `ratio` (per window the
    ratio wobbles a little, so the two lines do not run parallel), stored by the backtest
    service."""
    copies = []
    for index, row in enumerate(rows):
        factor = ratio * (1 + 0.04 * ((index % 3) - 1))
        copies.append(
            {
                "window_start": row.window_start,
                "window_end": row.window_end,
                **{
                    name: getattr(row, name) * factor if getattr(row, name) is not None else None
                    for name in SCALED_FIELDS
                },
                **{name: getattr(row, name) for name in COPIED_FIELDS},
            }
        )
    return store_backtest_results(
        version=version, kind=BacktestResult.Kind.WALK_FORWARD, rows=copies
    )


def store_t_minus_1(version: ModelVersion, *, walk_forward: list[BacktestResult]) -> None:
    """Daily T-1 results for the last five weeks, at the errors of the walk-forward windows
    that cover them (what the daily backtest would have found for those days)."""
    rows = []
    for window in walk_forward[-5:]:
        day = window.window_start
        while day <= window.window_end:
            rows.append(
                {
                    "window_start": day,
                    "window_end": day,
                    **{name: getattr(window, name) for name in SCALED_FIELDS},
                    "n_points": max(1, window.n_points // 7),
                }
            )
            day += dt.timedelta(days=1)
    store_backtest_results(version=version, kind=BacktestResult.Kind.T_MINUS_1, rows=rows)


def record_retrain(version: ModelVersion, *, panel) -> ModelRetrainingLog:
    """The retraining log row a scheduled retrain leaves for the version it registered."""
    now = timezone.now()
    return ModelRetrainingLog.objects.create(
        name=version.name,
        segment=version.segment,
        trigger=Trigger.SCHEDULED,
        status=ModelRetrainingLog.Status.SUCCEEDED,
        attempts=1,
        started_at=now,
        finished_at=now,
        rows=version.training_rows,
        data_start=version.training_start,
        data_end=version.training_end,
        resulting_version=version,
        outcome="challenger",
        algorithm=version.algorithm,
        hyperparameters=version.hyperparameters,
        window_days=panel.n_days,
    )


def build_arena(
    *,
    challenger_algorithm: str = "seasonal_naive",
    with_backtests: bool = True,
    with_importance: bool = False,
) -> Arena:
    """Sales of 8 series; v1 (seasonal naive) champion, promoted as the first model; v2
    challenger (a seasonal naive with other calibration, or a small XGBoost: slower, and a real
    contest) judged against it by the promotion gate; 90 days of walk-forward results for both;
    with `with_importance`, each version's feature importance measured as a retrain does.
    """
    last_day = dt.date.today() - dt.timedelta(days=1)
    import_sales(
        source=generate_sales(
            stores=STORES, products=PRODUCTS, days=DAYS, seed=11, end_date=last_day
        )
    )
    panel = load_panel(start=last_day - dt.timedelta(days=DAYS - 1), end=last_day)
    training = panel.until(last_day - dt.timedelta(days=28))
    champion = _register(
        algorithm="seasonal_naive",
        hyperparameters={},
        panel=training,
        with_importance=with_importance,
    )
    evaluate_for_promotion(candidate=champion, windows=2)  # the first model serves at once
    challenger = _register(
        algorithm=challenger_algorithm,
        hyperparameters=CHALLENGER_RECIPES[challenger_algorithm],
        panel=panel,
        parent=champion,
        with_importance=with_importance,
    )
    evaluate_for_promotion(candidate=challenger, promote_if_better=False, windows=2)
    challenger = make_challenger(
        version=challenger, actor=None, reason="Scheduled retrain kept as challenger"
    )
    record_retrain(challenger, panel=panel)
    if with_backtests:
        champion_rows = run_continuous_backtest(version=champion)
        store_t_minus_1(champion, walk_forward=champion_rows)
        challenger_rows = scaled_copy(challenger, rows=champion_rows, ratio=CHALLENGER_ERROR_RATIO)
        store_t_minus_1(challenger, walk_forward=challenger_rows)
    champion.refresh_from_db()
    challenger.refresh_from_db()
    return Arena(champion=champion, challenger=challenger, last_day=last_day)


# -- a drift incident, built directly (no drift simulation) -------------------------------------

DRIFT_DAYS, SHIFTED_DAYS = 40, 8
# The root cause as the daily check stores it: two series lead the extra under-forecast.
ROOT_CAUSE = {
    "leads": "bias",
    "recent": {"days": SHIFTED_DAYS},
    "bias": {
        "change": 1.9,
        "by_department": [{"key": "Electronics", "series": 2, "change": 1.9, "share_pct": 100.0}],
        "by_store": [{"key": "S001", "series": 2, "change": 1.9, "share_pct": 100.0}],
        "top_series": [
            {
                "store": "S001",
                "product": "SKU001",
                "department": "Electronics",
                "change": 1.2,
                "share_pct": 63.2,
                "spreads": 4.1,
            },
            {
                "store": "S001",
                "product": "SKU002",
                "department": "Electronics",
                "change": 0.7,
                "share_pct": 36.8,
                "spreads": 2.6,
            },
        ],
    },
    "input_shift": {
        "threshold": 0.2,
        "shifted": ["sales level"],
        "inputs": [{"input": "sales level", "psi": 0.31, "shifted": True}],
    },
}


@dataclass
class Drift:
    incident: DriftIncident
    champion: ModelVersion
    alert: MLAlert
    last_day: dt.date

    @property
    def change_date(self) -> dt.date:
        return self.incident.change_date


def build_drift_incident(*, last_day: dt.date | None = None) -> Drift:
    """A champion's DRIFT_DAYS daily T-1 results (stored by the backtest service), the last
    SHIFTED_DAYS 25% worse and 15% under-forecast, and the open incident with its critical
    alert that the daily check raises for them; no challenger yet."""
    last_day = last_day or dt.date.today() - dt.timedelta(days=1)
    first = last_day - dt.timedelta(days=DRIFT_DAYS - 1)
    change = last_day - dt.timedelta(days=SHIFTED_DAYS - 1)
    champion = ModelVersionFactory(
        status=ModelVersion.Status.CHAMPION,
        training_end=first - dt.timedelta(days=1),
        last_evaluation={"candidate_metrics": {"mae": 10.0, "wape": 40.0}},
    )
    rows = []
    for n in range(DRIFT_DAYS):
        day = first + dt.timedelta(days=n)
        shifted = day >= change
        mae = 12.5 if shifted else 10.0 + 0.2 * (n % 3 - 1)
        bias = -15.0 if shifted else 0.5 * (n % 4) - 0.75
        wape = 40.0 * mae / 10.0 * (1 + bias / 100)
        rows.append(
            {
                "window_start": day,
                "window_end": day,
                "mae": mae,
                "wape": wape,
                "bias": bias,
                "n_points": 100,
            }
        )
    store_backtest_results(version=champion, kind=BacktestResult.Kind.T_MINUS_1, rows=rows)
    numbers = {
        "baseline_mae": 10.0,
        "recent_mae": 12.5,
        "drift_pct": 25.0,
        "threshold_pct": 15.0,
        "champion_version": champion.version,
        "rules": "threshold, bias_cusum",
        "as_of": last_day.isoformat(),
        "change_date": change.isoformat(),
    }
    incident = DriftIncident.objects.create(
        champion=champion,
        change_date=change,
        opened_on=last_day,
        last_checked_on=last_day,
        rules=["threshold", "bias_cusum"],
        detection=numbers,
        latest=numbers,
        root_cause=ROOT_CAUSE,
    )
    incident.alert = raise_alert(
        alert_type=MLAlert.AlertType.DRIFT_DETECTED,
        severity=MLAlert.Severity.CRITICAL,
        title=f"Model drift detected — {incident.where} {champion.version}: MAE 25.0% worse",
        message="The champion no longer fits the sales.",
        metadata={**numbers, "incident_id": incident.pk, "next_step": "An emergency retrain."},
        dedup_key=f"drift_detected:incident:{incident.pk}",
    )
    incident.save(update_fields=["alert"])
    return Drift(incident=incident, champion=champion, alert=incident.alert, last_day=last_day)


def answer_with_challenger(drift: Drift, *, recommended: bool, days: int = 7) -> ModelVersion:
    """The emergency retrain's challenger, judged on `days` days after the change: the
    evidence recommends it, or not yet (too few days)."""
    challenger = ModelVersionFactory(
        status=ModelVersion.Status.CHALLENGER,
        trigger=Trigger.DRIFT_DETECTED,
        parent=drift.champion,
        training_end=drift.last_day - dt.timedelta(days=days),
        last_evaluation={
            "source": "shadow",
            "promote": recommended,
            "ready": recommended,
            "incident_id": drift.incident.pk,
            "window": {"days": days},
            "improvement": {"mae_pct": 14.2, "mape_pct": 11.0},
            "test": {"confidence": 0.991},
            "reason": "Beats the drifted champion on the days after the change."
            if recommended
            else f"{days} of 7 day(s) so far; no verdict yet.",
        },
    )
    DriftIncident.objects.filter(pk=drift.incident.pk).update(challenger=challenger)
    MLAlert.objects.filter(pk=drift.alert.pk).update(model_version=challenger)
    drift.incident.refresh_from_db()
    drift.alert.refresh_from_db()
    return challenger


# -- one series' days, for the series explorer ---------------------------------------------------

SERIES_DAYS = 56
STOCK_OUT_DAYS = (20, 21)  # zero sold while out of stock
PROMOTION_DAYS = (30, 31, 32, 33, 34)
SHADOW_DAYS = 20  # the shadow forecast the last 20 days only


@dataclass
class SeriesData:
    store: Store
    product: Product
    first: dt.date
    last: dt.date


def build_series_days(
    *, served_by: ModelVersion, shadow: ModelVersion, last_day: dt.date
) -> SeriesData:
    """SERIES_DAYS days of S001/SKU001 (and SKU002 beside it): its sales, two stock-outs, a
    promotion week, the forecast `served_by` served each day (made the day before, with its
    interval) and `shadow`'s forecasts of the last SHADOW_DAYS."""
    store, _ = Store.objects.get_or_create(code="S001", defaults={"name": "Main street"})
    product, _ = Product.objects.get_or_create(sku="SKU001", defaults={"department": "Electronics"})
    other, _ = Product.objects.get_or_create(sku="SKU002", defaults={"department": "Electronics"})
    first = last_day - dt.timedelta(days=SERIES_DAYS - 1)
    sales, forecasts = [], []
    for n in range(SERIES_DAYS):
        day = first + dt.timedelta(days=n)
        quantity = 0 if n in STOCK_OUT_DAYS else 10 + n % 7
        for sku in (product, other):
            sales.append(
                Sale(
                    store=store,
                    product=sku,
                    date=day,
                    quantity=quantity,
                    in_stock=n not in STOCK_OUT_DAYS,
                    on_promotion=n in PROMOTION_DAYS,
                )
            )
        common = {"store": store, "product": product, "target_date": day}
        made_on = day - dt.timedelta(days=1)
        forecasts.append(
            Forecast(
                model_version=served_by,
                made_on=made_on,
                value=11.0 + n % 5,
                lower=7.0 + n % 5,
                upper=16.0 + n % 5,
                served=True,
                **common,
            )
        )
        if n >= SERIES_DAYS - SHADOW_DAYS:
            forecasts.append(
                Forecast(
                    model_version=shadow,
                    made_on=made_on,
                    value=12.0 + n % 6,
                    lower=8.0,
                    upper=17.0,
                    served=False,
                    **common,
                )
            )
    Sale.objects.bulk_create(sales)
    Forecast.objects.bulk_create(forecasts)
    return SeriesData(store=store, product=product, first=first, last=last_day)
