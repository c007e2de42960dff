"""Data for admin tests, built with the real services: sales, fitted versions, backtests, alerts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from forecasting.families import build_model
from forecasting.importance import fit_measuring_importance
from forecasting.services import import_sales
from forecasting.synthetic import generate_sales
from mlops.models import BacktestResult, ModelRetrainingLog, ModelVersion, Trigger
from mlops.services import make_challenger, register_model_version
from mlops.services.backtesting import run_continuous_backtest, store_backtest_results
from mlops.services.data import load_panel
from mlops.services.evaluation import evaluate_for_promotion
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
