"""Global feature importance of a fitted model: permutation importance on held-out days (every
family, through its own forecast) and mean |contribution| (families with exact contributions).

Permutation importance of a feature is how much the MAE of one-day-ahead forecasts of held-out
days grows when that feature's values are shuffled across the scored rows (the other inputs of
each row kept), in units per series-day, averaged over a few seeded shuffles. The held-out days
are the weeks the interval calibration holds out: `ForecastModel.fit` fits the recipe without
them first, so the importance is measured out of sample at no extra fit.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forecasting import metrics
from forecasting.families.base import ForecastModel, planned_promotions
from forecasting.families.inputs import FeatureInputs
from forecasting.panel import Panel

logger = logging.getLogger(__name__)

# Bounded work at training. Shuffling is cheap for trees (a prediction per shuffle) but the
# intermittent family forecasts row by row, so the rows stay in the low thousands.
PERMUTATION_ROWS = 2_000
PERMUTATION_REPEATS = 3
# XGBoost's exact TreeSHAP costs ~5 ms a row for 200 trees of depth 8 on two busy cores, a few
# hundred times a prediction: 500 rows take ~3 s and rank the leading features as 1,000 do.
CONTRIBUTION_ROWS = 500
IMPORTANCE_SEED = 0
# Without interval calibration (or on a panel too short for it) the held-out days are the last
# week, and measuring on them takes a fit of the recipe without that week.
FALLBACK_HELD_OUT_DAYS = 7
FORECAST_HORIZON = 7


@dataclass(frozen=True, eq=False)
class HeldOutRows:
    """One-day-ahead inputs of sampled (series, day) points of held-out days, and actuals."""

    inputs: FeatureInputs
    actual: np.ndarray
    start: pd.Timestamp
    end: pd.Timestamp

    def window(self) -> dict[str, Any]:
        return {
            "start": self.start.date().isoformat(),
            "end": self.end.date().isoformat(),
            "days": (self.end - self.start).days + 1,
        }


def held_out_rows(
    *, model: ForecastModel, panel: Panel, first_day: pd.Timestamp, max_rows: int, seed: int
) -> HeldOutRows:
    """The inputs of `model`'s forecasts of each day from `first_day` to the panel's end, made
    as the daily forecast makes them on that day (sales before it, its planned promotions as
    known then), for at most `max_rows` seeded-random points with a known actual of series
    active before `first_day`. Raises ValueError when there is no such point."""
    first = panel.day_position(first_day)
    active = metrics.active_series(panel.quantity[:, :first])
    known = ~np.isnan(panel.quantity[:, first:]) & active[:, None]
    series, offsets = np.nonzero(known)
    if not len(series):
        raise ValueError("no known sales of active series in the held-out days")
    if len(series) > max_rows:
        keep = np.sort(np.random.default_rng(seed).choice(len(series), max_rows, replace=False))
        series, offsets = series[keep], offsets[keep]
    parts, actual = [], []
    for offset in np.unique(offsets):
        rows = series[offsets == offset]
        day = panel.dates[first + offset]
        seen = panel.select(rows).as_seen_at(day)
        dates = pd.date_range(day, periods=FORECAST_HORIZON, freq="D", name="date")
        parts.append(
            model.first_step_inputs(
                history=seen.until(day),
                future_promotion=planned_promotions(panel=seen, dates=dates),
                dates=dates,
            )
        )
        actual.append(panel.quantity[rows, first + offset])
    return HeldOutRows(
        inputs=FeatureInputs.concat(parts),
        actual=np.concatenate(actual).astype(np.float64),
        start=panel.dates[first],
        end=panel.dates[-1],
    )


def _served(model: ForecastModel, inputs: FeatureInputs) -> np.ndarray:
    # Forecasts are served floored at zero: score what would be served.
    return np.maximum(np.asarray(model.predict_first_step(inputs), dtype=np.float64), 0.0)


def _with_shares(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Rows ranked by `key`, largest first, each with its share (in %) of the positive total."""
    total = sum(max(row[key], 0.0) for row in rows)
    ranked = sorted(rows, key=lambda row: (-row[key], row["feature"]))
    return [
        {**row, "share_pct": max(row[key], 0.0) / total * 100.0 if total > 0 else 0.0}
        for row in ranked
    ]


def permutation_importance(
    *,
    model: ForecastModel,
    rows: HeldOutRows,
    repeats: int = PERMUTATION_REPEATS,
    seed: int = IMPORTANCE_SEED,
) -> dict[str, Any]:
    """Each feature's permutation importance (the MAE increase, in units) on `rows`, ranked,
    with the baseline MAE and what it was measured on; the same for the same seed."""
    forecast = _served(model, rows.inputs)
    scored = np.isfinite(forecast) & ~np.isnan(rows.actual)
    if not scored.any():
        raise ValueError("the model forecasts none of the held-out points")
    inputs, actual = rows.inputs.take(scored), rows.actual[scored]
    baseline = metrics.mae(actual, forecast[scored])
    random = np.random.default_rng(seed)
    features = []
    for name in model.features:
        increases = []
        for _ in range(repeats):
            shuffled = inputs.columns[name][random.permutation(inputs.n_rows)]
            error = metrics.mae(actual, _served(model, inputs.with_column(name, shuffled)))
            increases.append(error - baseline)
        features.append(
            {
                "feature": name,
                "importance": float(np.mean(increases)),
                "spread": float(np.std(increases)),
            }
        )
    return {
        "method": "permutation",
        "metric": "mae_increase",
        "unit": "units",
        "baseline_mae": baseline,
        "rows": int(inputs.n_rows),
        "repeats": repeats,
        "seed": seed,
        "window": rows.window(),
        "features": _with_shares(features, "importance"),
    }


def mean_absolute_contributions(*, model: ForecastModel, rows: HeldOutRows) -> dict[str, Any]:
    """Each feature's mean |exact contribution| over `rows`, in the model's output space,
    ranked (families with `exact_contributions`)."""
    contributions, base_value = model.feature_contributions(rows.inputs)
    mean_absolute = np.abs(contributions).mean(axis=0)
    return {
        "method": "tree_shap",
        "space": model.link,
        "rows": int(rows.inputs.n_rows),
        "seed": IMPORTANCE_SEED,
        "window": rows.window(),
        "base_value": float(np.mean(base_value)),
        "features": _with_shares(
            [
                {"feature": name, "mean_abs_contribution": float(value)}
                for name, value in zip(model.features, mean_absolute, strict=True)
            ],
            "mean_abs_contribution",
        ),
    }


def _permutation_after_refit(model: ForecastModel, panel: Panel) -> dict[str, Any] | None:
    """Permutation importance of the recipe refit without the panel's last week (no interval
    calibration to reuse); None when the panel is too short for it."""
    if panel.n_days < FALLBACK_HELD_OUT_DAYS + model.minimum_training_days:
        return None
    first_day = panel.dates[-FALLBACK_HELD_OUT_DAYS]
    earlier = type(model)(**{**model.hyperparameters, "calibration_windows": 0})
    earlier.fit(panel.until(first_day))
    rows = held_out_rows(
        model=earlier,
        panel=panel,
        first_day=first_day,
        max_rows=PERMUTATION_ROWS,
        seed=IMPORTANCE_SEED,
    )
    return {**permutation_importance(model=earlier, rows=rows), "held_out": "last_week_refit"}


@contextmanager
def _reported(record: dict[str, Any]):
    """Importance is a report, not a gate: a failure to measure it is logged and recorded as
    `error` in `record`, and training goes on."""
    started = time.perf_counter()
    try:
        yield
    except Exception as error:
        logger.exception("could not measure feature importance")
        record["error"] = repr(error)
    finally:
        record["seconds"] = round(record.get("seconds", 0.0) + time.perf_counter() - started, 3)


def fit_measuring_importance(model: ForecastModel, panel: Panel) -> dict[str, Any]:
    """Fit `model` on `panel` (raising as `fit` does), measuring its global importance on the
    way; returns the record: `permutation`, `mean_abs_contribution` for families with exact
    contributions, `seconds` spent measuring, and `error` when measuring failed."""
    record: dict[str, Any] = {}

    def on_held_out(fitting: ForecastModel, fitted: Panel, first_day: pd.Timestamp) -> None:
        with _reported(record):
            rows = held_out_rows(
                model=fitting,
                panel=fitted,
                first_day=first_day,
                max_rows=PERMUTATION_ROWS,
                seed=IMPORTANCE_SEED,
            )
            permutation = permutation_importance(model=fitting, rows=rows)
            record["permutation"] = {**permutation, "held_out": "interval_calibration"}

    model.fit(panel, on_held_out=on_held_out)
    if "error" in record:
        return record
    with _reported(record):
        if "permutation" not in record:
            record["permutation"] = _permutation_after_refit(model, panel)
        if model.exact_contributions and record["permutation"] is not None:
            rows = held_out_rows(
                model=model,
                panel=panel,
                first_day=pd.Timestamp(record["permutation"]["window"]["start"]),
                max_rows=CONTRIBUTION_ROWS,
                seed=IMPORTANCE_SEED,
            )
            record["mean_abs_contribution"] = mean_absolute_contributions(model=model, rows=rows)
    return record
