"""The forecast accuracy metrics of DESIGN.md ("Definitions"), one implementation each.

Every metric takes numpy arrays of any (matching) shape. Points whose actual is NaN (unknown) or
whose forecast is NaN (not forecast) are left out; `compute_all` reports how many. A metric over
no points is None, and so are the ratios to `sum(actual)` (wape, bias) when that sum is 0 and
mape when no actual is > 0: those are undefined, and 0 would read as "perfect".

The retail pack (fva_pct, mase, rmsse, wql, tracking_signal) reads points as [series, days]:
the scaled errors and the seasonal-naive baseline also need `history`, each series' sales of the
days just before the first scored day (never the scored days themselves). docs/METRICS.md says
how each is pooled over series.
"""

from __future__ import annotations

import numpy as np

DEFAULT_OVERSTOCK_TOLERANCE = 1.2
ACTIVE_SERIES_DAYS = 28
# The seasonal-naive forecast is the same weekday a week earlier.
SEASON_DAYS = 7
# Days of sales before the scored days that scale MASE / RMSSE (8 weeks: 49 week-on-week pairs).
SCALE_HISTORY_DAYS = 56
# A series with fewer known days than this before the scored days is not scaled (left out of
# MASE / RMSSE): a week-on-week error needs at least one day and the same weekday before it.
MIN_SCALE_DAYS = 8
# wQL's quantiles: the 80% interval's bounds and the point forecast as the median.
WQL_QUANTILES = (0.1, 0.5, 0.9)
# |tracking signal| above this says the errors lean one way (forecasts biased).
TRACKING_SIGNAL_BAND = 4.0


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


def _as_series(values: np.ndarray) -> np.ndarray:
    """Float64 [series, days]; a 1-D array is one series."""
    values = np.asarray(values, dtype=np.float64)
    return values.reshape(1, -1) if values.ndim == 1 else values


def seasonal_naive(actual: np.ndarray, *, history: np.ndarray) -> np.ndarray:
    """The seasonal-naive forecast of each point of [series, days] `actual`: the sale of the
    same weekday a week earlier, read from `history` ([series, days], the days just before the
    first scored day) or from a scored day at least a week before; NaN where that is unknown."""
    actual, history = _as_series(actual), _as_series(history)
    if history.shape[0] != actual.shape[0]:
        raise ValueError(f"history has {history.shape[0]} series, actual {actual.shape[0]}")
    known = np.concatenate([history, actual], axis=1)
    source = np.arange(actual.shape[1]) + history.shape[1] - SEASON_DAYS
    naive = np.full(actual.shape, np.nan)
    inside = source >= 0
    naive[:, inside] = known[:, source[inside]]
    return naive


def fva_pct(actual: np.ndarray, forecast: np.ndarray, *, naive: np.ndarray) -> float | None:
    """Forecast value added: 100 * (1 - MAE / MAE of the seasonal-naive forecast) over the
    points where the actual, the forecast and the naive forecast are all known (positive: the
    forecast is that % better than naive); None without such points or when naive's MAE is 0."""
    y = np.asarray(actual, dtype=np.float64).reshape(-1)
    f = np.asarray(forecast, dtype=np.float64).reshape(-1)
    n = np.asarray(naive, dtype=np.float64).reshape(-1)
    same = ~np.isnan(n) & ~np.isnan(f)
    return improvement_pct(mae(y[same], n[same]), mae(y[same], f[same]))


def naive_scale(history: np.ndarray, *, squared: bool = False) -> np.ndarray:
    """Each series' in-sample seasonal-naive error over `history` [series, days]: the mean
    |y_t - y_(t-7)| (or its square) over the days where both are known; NaN for a series with
    fewer than MIN_SCALE_DAYS known days or no such pair."""
    history = _as_series(history)
    scale = np.full(history.shape[0], np.nan)
    if history.shape[1] <= SEASON_DAYS:
        return scale
    change = history[:, SEASON_DAYS:] - history[:, :-SEASON_DAYS]
    change = change**2 if squared else np.abs(change)
    pairs = (~np.isnan(change)).sum(axis=1)
    enough = (pairs > 0) & ((~np.isnan(history)).sum(axis=1) >= MIN_SCALE_DAYS)
    scale[enough] = np.nansum(change[enough], axis=1) / pairs[enough]
    return scale


def _scaled_error(
    actual: np.ndarray, forecast: np.ndarray, *, history: np.ndarray, squared: bool
) -> float | None:
    """Mean over series of the series' error scaled by its in-sample naive error (MASE, or
    RMSSE when `squared`), over series with a scored point and a positive scale."""
    y, f = _as_series(actual), _as_series(forecast)
    if y.shape != f.shape:
        raise ValueError(f"actual has shape {y.shape}, forecast {f.shape}")
    scale = naive_scale(history, squared=squared)
    if scale.shape[0] != y.shape[0]:
        raise ValueError(f"history has {scale.shape[0]} series, actual {y.shape[0]}")
    error = np.abs(y - f)
    error = error**2 if squared else error
    points = (~np.isnan(error)).sum(axis=1)
    scaled = (points > 0) & (scale > 0)  # NaN scales compare False
    if not scaled.any():
        return None
    ratio = np.nansum(error[scaled], axis=1) / points[scaled] / scale[scaled]
    return float((np.sqrt(ratio) if squared else ratio).mean())


def mase(actual: np.ndarray, forecast: np.ndarray, *, history: np.ndarray) -> float | None:
    """Mean over series of MAE / the series' in-sample MAE of the 7-day seasonal-naive
    forecast (`history`: its days before the scored ones); series that cannot be scaled are
    left out; None when none can."""
    return _scaled_error(actual, forecast, history=history, squared=False)


def rmsse(actual: np.ndarray, forecast: np.ndarray, *, history: np.ndarray) -> float | None:
    """Mean over series of RMSE / the series' in-sample RMSE of the 7-day seasonal-naive
    forecast; as `mase` for which series count."""
    return _scaled_error(actual, forecast, history=history, squared=True)


def pinball_loss(actual: np.ndarray, forecast: np.ndarray, *, quantile: float) -> np.ndarray:
    """max(q (y - f), (q - 1) (y - f)) per point."""
    error = np.asarray(actual, dtype=np.float64) - np.asarray(forecast, dtype=np.float64)
    return np.maximum(quantile * error, (quantile - 1.0) * error)


def wql(
    actual: np.ndarray, forecast: np.ndarray, *, lower: np.ndarray, upper: np.ndarray
) -> float | None:
    """Weighted quantile loss: the mean over q in (0.1, 0.5, 0.9) of 2 * sum pinball_q / sum y,
    the interval's bounds being the 0.1 and 0.9 quantiles and the forecast the 0.5, over the
    points where all of them are known; None without such points or when sum y == 0."""
    y, f, lo, hi = (
        np.asarray(values, dtype=np.float64).reshape(-1)
        for values in (actual, forecast, lower, upper)
    )
    if not y.shape == f.shape == lo.shape == hi.shape:
        raise ValueError("actual, forecast and the bounds must have the same number of points")
    known = ~np.isnan(y) & ~np.isnan(f) & ~np.isnan(lo) & ~np.isnan(hi)
    y, f, lo, hi = y[known], f[known], lo[known], hi[known]
    total = y.sum()
    if total == 0:
        return None
    losses = [
        2.0 * pinball_loss(y, quantile_forecast, quantile=quantile).sum() / total
        for quantile, quantile_forecast in zip(WQL_QUANTILES, (lo, f, hi), strict=True)
    ]
    return float(np.mean(losses))


def tracking_signal(actual: np.ndarray, forecast: np.ndarray) -> float | None:
    """Cumulative error over mean absolute error, sum (y - f) / mean |y - f|, per series (a row
    of [series, days]; a 1-D array is one series) over its known points: positive when actuals
    run above the forecast (under-forecasting); acceptable within +-TRACKING_SIGNAL_BAND.
    Pooled as the mean over series with a non-zero error; None when none has one."""
    y, f = _as_series(actual), _as_series(forecast)
    if y.shape != f.shape:
        raise ValueError(f"actual has shape {y.shape}, forecast {f.shape}")
    error = y - f
    points = (~np.isnan(error)).sum(axis=1)
    absolute = np.nansum(np.abs(error), axis=1)
    tracked = absolute > 0
    if not tracked.any():
        return None
    signal = np.nansum(error[tracked], axis=1) / (absolute[tracked] / points[tracked])
    return float(signal.mean())


RETAIL_METRICS = ("fva_pct", "mase", "rmsse", "wql", "tracking_signal")


def compute_all(
    actual: np.ndarray,
    forecast: np.ndarray,
    *,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
    overstock_tolerance: float = DEFAULT_OVERSTOCK_TOLERANCE,
    active: np.ndarray | None = None,
    censored: np.ndarray | None = None,
    history: np.ndarray | None = None,
) -> dict[str, float | int | None]:
    """Every metric over the same points, plus n_points (actual and forecast known), n_missing
    (actual unknown), n_unforecast (actual known, no forecast) and n_censored (demand censored
    by a stock-out: `censored` points are left out of every metric, and not counted missing).

    For 2-D [series, days] arrays `coverage` is the share of active series (`active`, default
    every row) with a forecast on every day; for other shapes it is the share of known actuals
    that have a forecast. The retail pack needs series: tracking_signal is None for other
    shapes, and fva_pct, mase and rmsse need `history` too ([series, days] of the sales just
    before the first scored day), wql the bounds.
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
        **dict.fromkeys(RETAIL_METRICS),
    }
    if actual.ndim == 2:
        results["tracking_signal"] = tracking_signal(actual, forecast)
    if history is not None:
        results["fva_pct"] = fva_pct(
            actual, forecast, naive=seasonal_naive(actual, history=history)
        )
        results["mase"] = mase(actual, forecast, history=history)
        results["rmsse"] = rmsse(actual, forecast, history=history)
    if lower is not None and upper is not None:
        # Interval coverage over the same points as the accuracy metrics.
        points = np.where(forecast_known, actual, np.nan)
        results["interval_coverage"] = interval_coverage(points, lower=lower, upper=upper)
        results["wql"] = wql(actual, forecast, lower=lower, upper=upper)
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
