"""The forecast accuracy metrics of DESIGN.md ("Definitions"), one implementation each.

Every metric takes numpy arrays of any (matching) shape. Points whose actual is NaN (unknown) or
whose forecast is NaN (not forecast) are left out; `compute_all` reports how many. A metric over
no points is None, and so are the ratios to `sum(actual)` (wape, bias) when that sum is 0 and
mape when no actual is > 0: those are undefined, and 0 would read as "perfect".
"""

from __future__ import annotations

import numpy as np

DEFAULT_OVERSTOCK_TOLERANCE = 1.2
ACTIVE_SERIES_DAYS = 28


def _paired(actual: np.ndarray, forecast: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat float64 arrays of the points where both actual and forecast are known."""
    actual = np.asarray(actual, dtype=np.float64).reshape(-1)
    forecast = np.asarray(forecast, dtype=np.float64).reshape(-1)
    if actual.shape != forecast.shape:
        raise ValueError(f"actual has {actual.size} points, forecast {forecast.size}")
    known = ~np.isnan(actual) & ~np.isnan(forecast)
    return actual[known], forecast[known]


def mae(actual: np.ndarray, forecast: np.ndarray) -> float | None:
    """Mean absolute error, mean |y - f|; None when there are no points."""
    y, f = _paired(actual, forecast)
    return float(np.abs(y - f).mean()) if y.size else None


def mape(actual: np.ndarray, forecast: np.ndarray) -> float | None:
    """Mean of |y - f| / y over points with y > 0, in %; None when no actual is > 0."""
    y, f = _paired(actual, forecast)
    sold = y > 0
    if not sold.any():
        return None
    return float((np.abs(y[sold] - f[sold]) / y[sold]).mean() * 100.0)


def wape(actual: np.ndarray, forecast: np.ndarray) -> float | None:
    """sum |y - f| / sum y, in %; None when sum y == 0 (no points, or all actuals zero)."""
    y, f = _paired(actual, forecast)
    total = y.sum()
    if total == 0:
        return None
    return float(np.abs(y - f).sum() / total * 100.0)


def bias(actual: np.ndarray, forecast: np.ndarray) -> float | None:
    """sum (f - y) / sum y, in % (positive = over-forecast); None when sum y == 0."""
    y, f = _paired(actual, forecast)
    total = y.sum()
    if total == 0:
        return None
    return float((f - y).sum() / total * 100.0)


def stockout_miss_rate(actual: np.ndarray, forecast: np.ndarray) -> float | None:
    """Share of points where ceil(f) < y: stocking to the forecast misses demand; None if empty."""
    y, f = _paired(actual, forecast)
    return float((np.ceil(f) < y).mean()) if y.size else None


def overstock_rate(
    actual: np.ndarray,
    forecast: np.ndarray,
    *,
    tolerance: float = DEFAULT_OVERSTOCK_TOLERANCE,
) -> float | None:
    """Share of points with f - y >= 1 and f > y * tolerance (at least one whole unit too many
    and more than the tenant's tolerance); None if empty."""
    y, f = _paired(actual, forecast)
    if not y.size:
        return None
    return float(((f - y >= 1) & (f > y * tolerance)).mean())


def coverage(*, active: np.ndarray, forecasted: np.ndarray) -> float | None:
    """Share of active series that the model forecasts (boolean per series); None when no
    series is active."""
    active = np.asarray(active, dtype=bool)
    forecasted = np.asarray(forecasted, dtype=bool)
    if not active.any():
        return None
    return float(forecasted[active].mean())


def active_series(quantity: np.ndarray, *, days: int = ACTIVE_SERIES_DAYS) -> np.ndarray:
    """Which series sold anything in the last `days` columns of a [series, days] history."""
    recent = np.asarray(quantity)[:, -days:] if days else np.asarray(quantity)[:, :0]
    return np.nan_to_num(recent, nan=0.0).max(axis=1, initial=0.0) > 0


def interval_coverage(actual: np.ndarray, *, lower: np.ndarray, upper: np.ndarray) -> float | None:
    """Share of points with lower <= y <= upper (nominal 80%); None when no point has an actual
    and both bounds."""
    y = np.asarray(actual, dtype=np.float64).reshape(-1)
    lo = np.asarray(lower, dtype=np.float64).reshape(-1)
    hi = np.asarray(upper, dtype=np.float64).reshape(-1)
    known = ~np.isnan(y) & ~np.isnan(lo) & ~np.isnan(hi)
    if not known.any():
        return None
    return float(((lo[known] <= y[known]) & (y[known] <= hi[known])).mean())


def compute_all(
    actual: np.ndarray,
    forecast: np.ndarray,
    *,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
    overstock_tolerance: float = DEFAULT_OVERSTOCK_TOLERANCE,
    active: np.ndarray | None = None,
    censored: np.ndarray | None = None,
) -> dict[str, float | int | None]:
    """Every metric over the same points, plus n_points (actual and forecast known), n_missing
    (actual unknown), n_unforecast (actual known, no forecast) and n_censored (demand censored
    by a stock-out: `censored` points are left out of every metric, and not counted missing).

    For 2-D [series, days] arrays `coverage` is the share of active series (`active`, default
    every row) with a forecast on every day; for other shapes it is the share of known actuals
    that have a forecast.
    """
    actual = np.asarray(actual, dtype=np.float64)
    forecast = np.asarray(forecast, dtype=np.float64)
    if actual.shape != forecast.shape:
        raise ValueError(f"actual has shape {actual.shape}, forecast {forecast.shape}")
    censored = np.zeros(actual.shape, dtype=bool) if censored is None else np.asarray(censored)
    actual = np.where(censored, np.nan, actual)
    actual_known = ~np.isnan(actual)
    forecast_known = ~np.isnan(forecast)
    if actual.ndim == 2:
        rows_active = (
            np.ones(actual.shape[0], dtype=bool) if active is None else np.asarray(active, bool)
        )
        series_coverage = coverage(active=rows_active, forecasted=forecast_known.all(axis=1))
    else:
        series_coverage = coverage(active=actual_known, forecasted=forecast_known)

    results: dict[str, float | int | None] = {
        "mae": mae(actual, forecast),
        "mape": mape(actual, forecast),
        "wape": wape(actual, forecast),
        "bias": bias(actual, forecast),
        "stockout_miss_rate": stockout_miss_rate(actual, forecast),
        "overstock_rate": overstock_rate(actual, forecast, tolerance=overstock_tolerance),
        "coverage": series_coverage,
        "interval_coverage": None,
        "n_points": int((actual_known & forecast_known).sum()),
        "n_missing": int((~actual_known & ~censored).sum()),
        "n_censored": int(censored.sum()),
        "n_unforecast": int((actual_known & ~forecast_known).sum()),
    }
    if lower is not None and upper is not None:
        # Interval coverage over the same points as the accuracy metrics.
        points = np.where(forecast_known, actual, np.nan)
        results["interval_coverage"] = interval_coverage(points, lower=lower, upper=upper)
    return results


def improvement_pct(baseline: float | None, candidate: float | None) -> float | None:
    """How much lower the candidate's error is than the baseline's, in % of the baseline's
    (positive is better; None when either is unknown or the baseline is not positive)."""
    if baseline is None or candidate is None or baseline <= 0:
        return None
    return (baseline - candidate) / baseline * 100.0


def better_or_worse(improvement: float | None, *, digits: int = 1) -> str:
    """An improvement_pct in words a person reads: "3.2% better", "1.1% worse", "no different"
    (never a bare sign); "n/a" when unknown."""
    if improvement is None:
        return "n/a"
    shown = round(abs(improvement), digits)
    if shown == 0:
        return "no different"
    return f"{shown:.{digits}f}% {'better' if improvement > 0 else 'worse'}"
