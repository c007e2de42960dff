"""Walk-forward backtests: refit on data before each cutoff, forecast, score against actuals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from forecasting.families import Forecasts, build_model
from forecasting.families.base import WarmStart
from forecasting.metrics import (
    DEFAULT_OVERSTOCK_TOLERANCE,
    SCALE_HISTORY_DAYS,
    active_series,
    compute_all,
)
from forecasting.panel import DateLike, Panel, to_timestamp

T = TypeVar("T")
R = TypeVar("R")


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
    censored: np.ndarray  # demand censored by a stock-out: not scored
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
    training_days: int | None = None,
    min_training_days: int | None = None,
    warm_start: WarmStart | None = None,
    promotions_known: bool = True,
) -> list[WindowResult]:
    """For each cutoff, fit the recipe on the panel's days before it, forecast `horizon` days
    from it, and score the forecasts against the panel's actuals of those days.

    `training_days`: each fit sees only that many days before its cutoff (a sliding window,
    as a version retrained on its training window); by default every day before it. With
    `min_training_days`, a window with fewer days of history, or none known, is left out of
    the results. The fits share what they can through one refit session (features, feature
    bins, the cores: XGBoost's refits train two windows at once, see `XGBoostRefitSession`);
    with `warm_start`, boosted families also continue an earlier fit's trees instead of
    refitting every window from scratch (see `WarmStart`). The results are the same however
    many fits run at once.

    `promotions_known`: whether the forecasts see the panel's promotion flags of their target
    days as they are (an oracle: a benchmark's setting); False forecasts as the daily forecast
    does, with the flags as seen at the cutoff (`Panel.as_seen_at`: the promotion calendar's
    plans known by then, or none without a calendar).
    """
    windows = []
    for cutoff in cutoffs:
        cutoff = to_timestamp(cutoff)
        target = panel
        if training_days is not None:
            target = panel.window(
                cutoff - pd.Timedelta(days=training_days),
                cutoff + pd.Timedelta(days=horizon - 1),
            )
        history = target.until(cutoff)
        if min_training_days is not None and (
            history.n_days < min_training_days or np.isnan(history.quantity).all()
        ):
            continue
        windows.append((cutoff, target, history))
    if not windows:
        return []

    recipe = build_model(algorithm, **hyperparameters)
    with recipe.refit_session(panel, warm_start=warm_start) as session:
        session.plan([run for _, _, history in windows for run in recipe.training_runs(history)])

        def scored(window: tuple[pd.Timestamp, Panel, Panel]) -> WindowResult:
            cutoff, target, history = window
            model = build_model(algorithm, **hyperparameters).fit(history, session=session)
            seen = target if promotions_known else target.as_seen_at(cutoff)
            return _scored_window(
                forecasts=model.predict(seen, cutoff, horizon=horizon),
                panel=target,
                history=history,
                cutoff=cutoff,
                horizon=horizon,
                overstock_tolerance=overstock_tolerance,
            )

        if session.fits_at_once == 1 or len(windows) == 1:
            return [scored(window) for window in windows]
        return _in_threads(scored, windows, threads=session.fits_at_once)


def _in_threads(work: Callable[[T], R], items: list[T], *, threads: int) -> list[R]:
    """`[work(item) for item in items]` on `threads` threads, in order; the first error stops
    what has not started and is raised once the running ones have ended."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(work, item) for item in items]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _scored_window(
    *,
    forecasts: Forecasts,
    panel: Panel,
    history: Panel,
    cutoff: pd.Timestamp,
    horizon: int,
    overstock_tolerance: float,
) -> WindowResult:
    active = active_series(history.quantity)
    # MASE / RMSSE scales and the seasonal-naive forecast read only sales before the cutoff.
    before = history.quantity[:, -SCALE_HISTORY_DAYS:]
    scored = {
        "actual": _actuals(panel=panel, start=cutoff, horizon=horizon),
        "censored": _censored(panel=panel, start=cutoff, horizon=horizon),
        "forecast": forecasts.values,
        "lower": forecasts.lower,
        "upper": forecasts.upper,
    }
    department_metrics = {
        str(department): _score(
            **{name: values[panel.departments == department] for name, values in scored.items()},
            active=active[panel.departments == department],
            history=before[panel.departments == department],
            overstock_tolerance=overstock_tolerance,
        )
        for department in np.unique(panel.departments)
    }
    return WindowResult(
        cutoff=cutoff.date(),
        start=cutoff.date(),
        end=(cutoff + pd.Timedelta(days=horizon - 1)).date(),
        metrics=_score(
            **scored, active=active, history=before, overstock_tolerance=overstock_tolerance
        ),
        department_metrics=department_metrics,
        series_index=np.arange(panel.n_series),
        departments=panel.departments,
        **scored,
    )


def _actuals(*, panel: Panel, start: pd.Timestamp, horizon: int) -> np.ndarray:
    """Actuals [n_series, horizon] from `start`, NaN for days beyond the panel."""
    return _days_from(panel.quantity, panel=panel, start=start, horizon=horizon, fill=np.nan)


def _censored(*, panel: Panel, start: pd.Timestamp, horizon: int) -> np.ndarray:
    """Which of those points were censored by a stock-out."""
    if panel.censored is None:
        return np.zeros((panel.n_series, horizon), dtype=bool)
    return _days_from(panel.censored, panel=panel, start=start, horizon=horizon, fill=False)


def _days_from(
    cells: np.ndarray, *, panel: Panel, start: pd.Timestamp, horizon: int, fill
) -> np.ndarray:
    values = np.full((panel.n_series, horizon), fill, dtype=cells.dtype)
    first = panel.day_position(start)
    for step in range(horizon):
        if 0 <= first + step < panel.n_days:
            values[:, step] = cells[:, first + step]
    return values


def _score(
    *,
    actual: np.ndarray,
    forecast: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    censored: np.ndarray,
    active: np.ndarray,
    history: np.ndarray,
    overstock_tolerance: float,
) -> dict[str, float | int | None]:
    return compute_all(
        actual,
        forecast,
        lower=lower,
        upper=upper,
        overstock_tolerance=overstock_tolerance,
        active=active,
        censored=censored,
        history=history,
    )
