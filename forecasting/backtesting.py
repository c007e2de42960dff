"""Walk-forward backtests: refit on data before each cutoff, forecast, score against actuals."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forecasting.families import build_model
from forecasting.metrics import DEFAULT_OVERSTOCK_TOLERANCE, active_series, compute_all
from forecasting.panel import DateLike, Panel, to_timestamp


@dataclass(frozen=True, eq=False)
class WindowResult:
    """One walk-forward window: its metrics overall and per department, and the points scored.

    The arrays are [n_series, horizon]; row i is panel series `series_index[i]`, so two recipes
    backtested on the same panel and cutoffs can be compared series by series.
    """

    cutoff: dt.date
    start: dt.date
    end: dt.date
    metrics: dict[str, float | int | None]
    department_metrics: dict[str, dict[str, float | int | None]]
    actual: np.ndarray
    forecast: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    series_index: np.ndarray
    departments: np.ndarray


def weekly_cutoffs(last_day: DateLike, *, days: int = 90, window: int = 7) -> list[dt.date]:
    """Cutoffs of consecutive `window`-day windows covering the `days` days up to `last_day`
    (the last window ends on `last_day`), oldest first: 13 for 90 days of weeks."""
    last = to_timestamp(last_day)
    n_windows = -(-days // window)
    return [(last - pd.Timedelta(days=window * k - 1)).date() for k in range(n_windows, 0, -1)]


def walk_forward(
    *,
    algorithm: str,
    hyperparameters: dict[str, Any],
    panel: Panel,
    cutoffs: list[DateLike],
    horizon: int = 7,
    overstock_tolerance: float = DEFAULT_OVERSTOCK_TOLERANCE,
) -> list[WindowResult]:
    """For each cutoff, fit the recipe on the panel's days before it, forecast `horizon` days
    from it, and score the forecasts against the panel's actuals of those days."""
    results = []
    for cutoff in cutoffs:
        cutoff = to_timestamp(cutoff)
        history = panel.until(cutoff)
        model = build_model(algorithm, **hyperparameters).fit(history)
        forecasts = model.predict(panel, cutoff, horizon=horizon)
        actual = _actuals(panel=panel, start=cutoff, horizon=horizon)
        active = active_series(history.quantity)
        scored = {
            "actual": actual,
            "forecast": forecasts.values,
            "lower": forecasts.lower,
            "upper": forecasts.upper,
        }
        department_metrics = {
            str(department): _score(
                **{
                    name: values[panel.departments == department] for name, values in scored.items()
                },
                active=active[panel.departments == department],
                overstock_tolerance=overstock_tolerance,
            )
            for department in np.unique(panel.departments)
        }
        results.append(
            WindowResult(
                cutoff=cutoff.date(),
                start=cutoff.date(),
                end=(cutoff + pd.Timedelta(days=horizon - 1)).date(),
                metrics=_score(**scored, active=active, overstock_tolerance=overstock_tolerance),
                department_metrics=department_metrics,
                series_index=np.arange(panel.n_series),
                departments=panel.departments,
                **scored,
            )
        )
    return results


def _actuals(*, panel: Panel, start: pd.Timestamp, horizon: int) -> np.ndarray:
    """Actuals [n_series, horizon] from `start`, NaN for days beyond the panel."""
    actual = np.full((panel.n_series, horizon), np.nan, dtype=np.float32)
    first = panel.day_position(start)
    for step in range(horizon):
        if 0 <= first + step < panel.n_days:
            actual[:, step] = panel.quantity[:, first + step]
    return actual


def _score(
    *,
    actual: np.ndarray,
    forecast: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    active: np.ndarray,
    overstock_tolerance: float,
) -> dict[str, float | int | None]:
    return compute_all(
        actual,
        forecast,
        lower=lower,
        upper=upper,
        overstock_tolerance=overstock_tolerance,
        active=active,
    )
