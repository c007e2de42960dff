"""Drift root cause: where a drift's extra error sits, and whether the model's inputs moved.

Computed when an incident opens and stored with it (`DriftIncident.root_cause`), then again at
each check while it is open, on the days seen since; the alert, the admin and
`GET /api/v1/drift-incidents` show it.

- **Where.** The served one-day-ahead forecasts of the days from the change date to the day the
  drift was found ("recent") are compared with the same weekdays of the four weeks before the
  change ("reference": weekday-matched, so a weekend in one window and not the other is not a
  cause). Each series' change is its recent error minus what its reference error predicts for
  its recent points, over all recent points, so the series' parts add up to the segment's change
  exactly: of the MAE (error) and of the mean error actual - forecast (bias; positive is more
  under-forecast). Departments and stores sum their series. The top series are the largest
  changes in units among those whose change is clearly their own: more than two of their own
  day-to-day spreads over the four weeks before (`spreads`, on days without a promotion), so a
  busy series' ordinary noise does not crowd out a series that really moved. The
  rule that fired decides which of the two leads: bias when the bias CUSUM fired, else error.
  Stock-out days are left out, as everywhere.
- **Inputs.** The population stability index (PSI) of each input between the same two windows:
  the sales level, the share of days on promotion, and each history feature the models read
  (lags, rolling means and deviations; calendar and code features move by construction and are
  left out). PSI over the reference's deciles, because daily counts are heavy-tailed and
  zero-heavy (quantile bins adapt to that, a distance in units would not compare across
  inputs), and it has a conventional reading: below 0.1 stable, 0.1 to 0.25 moderate, above
  0.25 a shift. An input counts as shifted above 0.2.
"""

from __future__ import annotations

import datetime as dt
import warnings
from typing import Any

import numpy as np

from forecasting.features import FEATURE_NAMES, LOOKBACK_DAYS, build_features
from forecasting.panel import Panel

REFERENCE_WEEKS = 4
# The recent window grows with each check of an open incident, up to two weeks after the change:
# a day or two of one series is mostly noise, a week of it is evidence.
MAX_RECENT_DAYS = 14
TOP_SERIES = 20
TOP_STORES = 10
SPREAD_FLOOR_UNITS = 1.0
SIGNIFICANT_SPREADS = 2.0
PSI_THRESHOLD = 0.2
PSI_BINS = 10
# An empty bin's share, so that a value seen on one side only is a large term, not an infinity.
PSI_FLOOR = 1e-4
HISTORY_FEATURES = tuple(
    name
    for name in FEATURE_NAMES
    if name.startswith(("lag_", "rolling_")) or name == "on_promotion"
)


def window_days(*, change_date: dt.date, until: dt.date) -> tuple[list[dt.date], list[dt.date]]:
    """The recent days (change date to `until`) and their weekday-matched reference days (the
    same weekdays of the REFERENCE_WEEKS weeks before the change)."""
    recent = [change_date + dt.timedelta(days=n) for n in range((until - change_date).days + 1)]
    reference = sorted(
        {
            day - dt.timedelta(weeks=week)
            for day in recent
            for week in range(1, REFERENCE_WEEKS + 1)
            if day - dt.timedelta(weeks=week) < change_date
        }
    )
    return recent, reference


def history_start(change_date: dt.date) -> dt.date:
    """The first sales day the root cause reads: the reference weeks and their features' history."""
    return change_date - dt.timedelta(weeks=REFERENCE_WEEKS, days=LOOKBACK_DAYS)


def _columns(panel: Panel, days: list[dt.date]) -> np.ndarray:
    positions = np.array([panel.day_position(day) for day in days], dtype=np.int64)
    return positions[(positions >= 0) & (positions < panel.n_days)]


def _excess(
    residual: np.ndarray, recent: np.ndarray, reference: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each series' recent sum of `residual` less its reference mean times its recent known
    points (0 for a series with no reference day), and those points."""
    now, before = residual[:, recent], residual[:, reference]
    known_now = (~np.isnan(now)).sum(axis=1)
    with warnings.catch_warnings():
        # A series with no known reference day is expected to give NaN here.
        warnings.simplefilter("ignore", RuntimeWarning)
        usual = np.nanmean(before, axis=1) if before.size else np.full(len(now), np.nan)
    return np.where(np.isnan(usual), 0.0, np.nansum(now, axis=1) - usual * known_now), known_now


def _unusual(residual: np.ndarray, recent: np.ndarray, reference: np.ndarray, spread_days):
    """How unusual each series' change is for it: its excess over its recent points in units of
    its own day-to-day spread over `spread_days` (at least one unit)."""
    excess, known_now = _excess(residual, recent, reference)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        spread = np.nanstd(residual[:, spread_days], axis=1, ddof=1) if spread_days.size > 1 else 0
    spread = np.maximum(np.nan_to_num(spread), SPREAD_FLOOR_UNITS)
    return excess / (spread * np.sqrt(np.maximum(known_now, 1)))


def _mean(values: np.ndarray) -> float | None:
    known = ~np.isnan(values)
    return float(values[known].mean()) if known.any() else None


def _shares(parts: np.ndarray, labels: np.ndarray, total: float, limit: int | None) -> list:
    rows = []
    for label in np.unique(labels):
        change = float(parts[labels == label].sum())
        rows.append(
            {
                "key": str(label),
                "series": int((labels == label).sum()),
                "change": round(change, 4),
                "share_pct": round(100.0 * change / total, 1) if total else None,
            }
        )
    rows.sort(key=lambda row: -row["change"] * np.sign(total or 1.0))
    return rows[:limit] if limit else rows


def breakdown(
    *,
    panel: Panel,
    forecast: np.ndarray,
    recent: list[dt.date],
    reference: list[dt.date],
) -> dict[str, Any]:
    """The error and bias changes of the served `forecast` ([series, day] as the panel) split by
    department, store and series."""
    actual = panel.quantity.astype(np.float64)
    if panel.censored is not None:
        actual[panel.censored] = np.nan  # a stock-out hides the demand: not an error
    now, before = _columns(panel, recent), _columns(panel, reference)
    spread_days = _columns(panel, _days_before(recent[0], weeks=REFERENCE_WEEKS))
    found: dict[str, Any] = {}
    # A promotion the forecast did not know moves a series for days: that is the promotion's
    # error (see the inputs), not a series whose demand moved, so the series ranking reads
    # ordinary days only; the shares read every day.
    ordinary = np.where(panel.on_promotion, np.nan, 1.0)
    for kind, residual in (("error", np.abs(actual - forecast)), ("bias", actual - forecast)):
        excess, known_now = _excess(residual, now, before)
        points = max(int(known_now.sum()), 1)
        parts = excess / points
        unusual = _unusual(residual * ordinary, now, before, spread_days)
        recent_mean, reference_mean = _mean(residual[:, now]), _mean(residual[:, before])
        total = float(parts.sum())
        direction = 1.0 if total >= 0 else -1.0
        # The series whose change is clearly their own (beyond SIGNIFICANT_SPREADS of their
        # day-to-day spread), largest first in units: what moved, and by how much.
        significant = unusual * direction > SIGNIFICANT_SPREADS
        order = [int(i) for i in np.argsort(-parts * direction) if significant[i]][:TOP_SERIES]
        found[kind] = {
            "reference": None if reference_mean is None else round(reference_mean, 4),
            "recent": None if recent_mean is None else round(recent_mean, 4),
            "change": round(total, 4),
            "by_department": _shares(parts, panel.departments, total, None),
            "by_store": _shares(parts, panel.stores, total, TOP_STORES),
            "top_series": [
                {
                    "store": str(panel.stores[index]),
                    "product": str(panel.products[index]),
                    "department": str(panel.departments[index]),
                    "change": round(float(parts[index]), 4),
                    "share_pct": round(100.0 * float(parts[index]) / total, 1) if total else None,
                    "spreads": round(float(unusual[index]), 2),
                }
                for index in order
            ],
        }
    return found


def _days_before(day: dt.date, *, weeks: int) -> list[dt.date]:
    return [day - dt.timedelta(days=n) for n in range(weeks * 7, 0, -1)]


def psi(reference: np.ndarray, recent: np.ndarray) -> float | None:
    """Population stability index of `recent` against `reference` over the reference's deciles
    (NaN values left out); None when either side is empty."""
    reference, recent = reference[~np.isnan(reference)], recent[~np.isnan(recent)]
    if not reference.size or not recent.size:
        return None
    edges = np.unique(np.quantile(reference, np.linspace(0.0, 1.0, PSI_BINS + 1)[1:-1]))
    expected = np.bincount(
        np.searchsorted(edges, reference, side="right"), minlength=edges.size + 1
    )
    actual = np.bincount(np.searchsorted(edges, recent, side="right"), minlength=edges.size + 1)
    expected = np.maximum(expected / reference.size, PSI_FLOOR)
    actual = np.maximum(actual / recent.size, PSI_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def input_shift(*, panel: Panel, recent: list[dt.date], reference: list[dt.date]) -> dict:
    """PSI of the sales level, the promotion share and each history feature, recent against
    reference, with which of them count as shifted."""
    now, before = _columns(panel, recent), _columns(panel, reference)
    rows = []
    if now.size and before.size:
        first, last = int(before.min()), int(now.max()) + 1
        features = build_features(
            quantity=panel.quantity,
            on_promotion=panel.on_promotion,
            dates=panel.dates,
            department_codes=np.zeros(panel.n_series),
            store_codes=np.zeros(panel.n_series),
            first_day=first,
            last_day=last,
        ).reshape(panel.n_series, last - first, len(FEATURE_NAMES))
        inputs = {"sales_level": panel.quantity.astype(np.float64)[:, first:last]}
        inputs.update(
            {name: features[:, :, FEATURE_NAMES.index(name)] for name in HISTORY_FEATURES}
        )
        for name, values in inputs.items():
            value = psi(values[:, before - first].ravel(), values[:, now - first].ravel())
            rows.append(
                {
                    "input": name,
                    "psi": None if value is None else round(value, 4),
                    "shifted": value is not None and value > PSI_THRESHOLD,
                }
            )
    promoted = panel.on_promotion.astype(np.float64)
    return {
        "metric": "psi",
        "threshold": PSI_THRESHOLD,
        "promotion_share": {
            "reference": round(float(promoted[:, before].mean()), 4) if before.size else None,
            "recent": round(float(promoted[:, now].mean()), 4) if now.size else None,
        },
        "inputs": rows,
        "shifted": [row["input"] for row in rows if row["shifted"]],
    }


def drift_root_cause(
    *,
    panel: Panel,
    forecast: np.ndarray,
    change_date: dt.date,
    until: dt.date,
    rules: list[str],
) -> dict[str, Any]:
    """Where the drift found on `until` (since `change_date`) sits, and which inputs moved, as
    JSON-ready values."""
    recent, reference = window_days(change_date=change_date, until=until)
    return {
        "recent": {
            "start": recent[0].isoformat(),
            "end": recent[-1].isoformat(),
            "days": len(recent),
        },
        "reference": {"weeks": REFERENCE_WEEKS, "days": len(reference)},
        "leads": "bias" if "bias_cusum" in rules else "error",
        **breakdown(panel=panel, forecast=forecast, recent=recent, reference=reference),
        "input_shift": input_shift(panel=panel, recent=recent, reference=reference),
    }


def incident_root_cause(*, incident: Any, until: dt.date) -> dict[str, Any]:
    """`drift_root_cause` of an incident's segment, on the forecasts served from its reference
    weeks to `until` (at most MAX_RECENT_DAYS after the change), ready to store as JSON."""
    from mlops.selectors import forecast_matrix, served_forecasts
    from mlops.services.data import load_panel
    from mlops.services.evaluation import Recipe

    change = incident.change_date
    until = min(until, change + dt.timedelta(days=MAX_RECENT_DAYS - 1))
    panel = load_panel(start=history_start(change), end=until)
    if panel.n_series:
        panel = panel.select(Recipe.of(incident.champion).series_mask(panel))
    served = served_forecasts(start=change - dt.timedelta(weeks=REFERENCE_WEEKS), end=until)
    return drift_root_cause(
        panel=panel,
        forecast=forecast_matrix(served, panel=panel),
        change_date=change,
        until=until,
        rules=list(incident.rules),
    )


def root_cause_summary(found: dict[str, Any]) -> str:
    """One paragraph of where the drift sits and which inputs moved, for the alert."""
    kind = found.get("leads", "error")
    part = found.get(kind) or {}
    what = (
        "extra under-forecast"
        if kind == "bias" and (part.get("change") or 0) >= 0
        else ("extra over-forecast" if kind == "bias" else "extra error")
    )
    departments = ", ".join(
        f"{row['key']} {row['share_pct']:.0f}%"
        for row in part.get("by_department", [])[:3]
        if row.get("share_pct") is not None
    )
    series = ", ".join(f"{row['store']}/{row['product']}" for row in part.get("top_series", [])[:5])
    shift = found.get("input_shift") or {}
    inputs = (
        "inputs shifted (PSI above {:.1f}): {}".format(
            shift.get("threshold", 0.2), ", ".join(shift["shifted"])
        )
        if shift.get("shifted")
        else "no input shifted (PSI above {:.1f})".format(shift.get("threshold", 0.2))
    )
    recent = found.get("recent") or {}
    return (
        f"Where, over {recent.get('days', 0)} day(s) since the change: shares of the {what}: "
        f"{departments or 'none'}; series that moved most for their size: {series or 'none'}; "
        f"{inputs}."
    )
