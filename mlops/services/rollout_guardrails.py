"""A canary's business guardrails: each metric of the canary against the champion's on the same
series and days (the canary's served forecasts and the champion's stored ones beside them), over
all canary series and per department, with a paired test over series for each.

A guardrail is breached in a scope when the canary is worse than the champion by more than its
tolerance (in the metric's own unit: points of % for WAPE and |bias|, a share for the rates, the
shortfall below the nominal 80% for interval coverage) and
a one-sided Wilcoxon signed-rank test over series (`promotion.paired_series_test`, each series'
mean per-point loss) is sure that the canary is worse. Checking each department as well keeps a
canary that is bad for one department from hiding in the total; since every guardrail in every
scope is a test, the plan's confidence holds for the family (Bonferroni): each test needs
1 - (1 - confidence) / number of tests, so a good canary is not rolled back by one of twenty
tests landing in its 5% by chance.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import connection

from forecasting import metrics
from forecasting.intervals import NOMINAL_COVERAGE
from forecasting.models import Forecast, Product, Sale
from mlops.services.promotion import json_ready, paired_series_test

ALL_SERIES = "all"
# What each guardrail's tolerance means, for people (admin, alerts, docs).
UNITS = {
    "wape": "points of WAPE (%)",
    "bias": "points of |bias| (%)",
    "stockout_miss_rate": "share of points",
    "overstock_rate": "share of points",
    "interval_coverage": "share of points short of the nominal 80%",
}
DEFAULT_GUARDRAILS = (
    {"metric": "wape", "tolerance": 5.0},
    {"metric": "bias", "tolerance": 5.0},
    {"metric": "stockout_miss_rate", "tolerance": 0.05},
    {"metric": "overstock_rate", "tolerance": 0.05},
    {"metric": "interval_coverage", "tolerance": 0.10},
)


@dataclass(frozen=True)
class Points:
    """The judged points: one entry per canary series-day with a known actual."""

    series: np.ndarray  # an integer per series
    department: np.ndarray
    actual: np.ndarray
    canary: np.ndarray
    canary_lower: np.ndarray
    canary_upper: np.ndarray
    champion: np.ndarray
    champion_lower: np.ndarray
    champion_upper: np.ndarray
    days: tuple[dt.date, ...]

    def select(self, mask: np.ndarray) -> Points:
        fields = {
            name: getattr(self, name)[mask] for name in self.__dataclass_fields__ if name != "days"
        }
        return Points(**fields, days=self.days)

    @property
    def n_series(self) -> int:
        return int(len(np.unique(self.series)))


def load_points(*, canary_id: int, champion_id: int, start: dt.date, end: dt.date) -> Points:
    """The series-days from `start` to `end` that the canary served (forecast made on the day,
    one day ahead as served), with the champion's forecast of the same series and day and the
    actual; unknown and censored actuals (a zero sale while out of stock) are left out."""
    sql = f"""
        SELECT c.store_id, c.product_id, p.department, c.target_date, s.quantity, s.in_stock,
               c.value, c.lower, c.upper, h.value, h.lower, h.upper
        FROM {Forecast._meta.db_table} c
        JOIN {Forecast._meta.db_table} h
          ON h.model_version_id = %(champion)s AND h.store_id = c.store_id
         AND h.product_id = c.product_id AND h.made_on = c.made_on
         AND h.target_date = c.target_date
        JOIN {Product._meta.db_table} p ON p.id = c.product_id
        JOIN {Sale._meta.db_table} s
          ON s.store_id = c.store_id AND s.product_id = c.product_id AND s.date = c.target_date
        WHERE c.model_version_id = %(canary)s AND c.served AND c.made_on = c.target_date
          AND c.target_date BETWEEN %(start)s AND %(end)s
          AND NOT (s.quantity = 0 AND NOT s.in_stock)
        ORDER BY c.store_id, c.product_id, c.target_date
    """
    params = {"canary": canary_id, "champion": champion_id, "start": start, "end": end}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not rows:
        empty = np.zeros(0, dtype=np.float64)
        return Points(
            np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object), *([empty] * 7), days=()
        )
    columns = list(zip(*rows, strict=True))
    keys = np.array([f"{s}|{p}" for s, p in zip(columns[0], columns[1], strict=True)])
    _, series = np.unique(keys, return_inverse=True)

    def floats(index: int) -> np.ndarray:
        return np.array(columns[index], dtype=np.float64)

    return Points(
        series=series,
        department=np.array(columns[2], dtype=object),
        actual=floats(4),
        canary=floats(6),
        canary_lower=floats(7),
        canary_upper=floats(8),
        champion=floats(9),
        champion_lower=floats(10),
        champion_upper=floats(11),
        days=tuple(sorted(set(columns[3]))),
    )


def _pooled(metric: str, points: Points, side: str, overstock_tolerance: float) -> float | None:
    """The metric over the points, from forecasting.metrics (its one implementation)."""
    y, f = points.actual, getattr(points, side)
    if metric == "wape":
        return metrics.wape(y, f)
    if metric == "bias":
        return metrics.bias(y, f)
    if metric == "stockout_miss_rate":
        return metrics.stockout_miss_rate(y, f)
    if metric == "overstock_rate":
        return metrics.overstock_rate(y, f, tolerance=overstock_tolerance)
    lower, upper = getattr(points, f"{side}_lower"), getattr(points, f"{side}_upper")
    return metrics.interval_coverage(y, lower=lower, upper=upper)


def _worse_by(metric: str, canary: float | None, champion: float | None) -> float | None:
    """How much worse the canary's value is than the champion's (positive is worse)."""
    if canary is None or champion is None:
        return None
    if metric == "bias":
        return abs(canary) - abs(champion)
    if metric == "interval_coverage":
        # Falling short of the nominal 80% thins safety stock; wider intervals than nominal
        # are the overstock guardrail's business, so sharper intervals are no breach.
        return max(NOMINAL_COVERAGE - canary, 0.0) - max(NOMINAL_COVERAGE - champion, 0.0)
    return canary - champion


def point_losses(
    metric: str, points: Points, side: str, *, overstock_tolerance: float, lean: float
) -> np.ndarray:
    """Each point's loss whose mean over a series is that series' value of the metric, higher
    being worse: |y - f| (WAPE's numerator), (f - y) in the direction the canary leans (bias),
    a stock-out miss, an overstock, a miss of the interval."""
    y, f = points.actual, getattr(points, side)
    if metric == "wape":
        return np.abs(y - f)
    if metric == "bias":
        return np.sign(lean or 1.0) * (f - y)
    if metric == "stockout_miss_rate":
        return (np.ceil(f) < y).astype(np.float64)
    if metric == "overstock_rate":
        return ((f - y >= 1) & (f > y * overstock_tolerance)).astype(np.float64)
    lower, upper = getattr(points, f"{side}_lower"), getattr(points, f"{side}_upper")
    return (~((lower <= y) & (y <= upper))).astype(np.float64)


def check_guardrail(
    *,
    metric: str,
    tolerance: float,
    points: Points,
    scope: str,
    confidence: float,
    overstock_tolerance: float,
) -> dict[str, Any]:
    """One guardrail in one scope: both sides' values, how much worse the canary is, the
    paired test's confidence that it is worse, and whether that is a breach."""
    canary = _pooled(metric, points, "canary", overstock_tolerance)
    champion = _pooled(metric, points, "champion", overstock_tolerance)
    worse_by = _worse_by(metric, canary, champion)
    test: dict[str, Any] = {"confidence": 0.0, "n_series": points.n_series}
    if points.actual.size:

        def losses(side: str) -> np.ndarray:
            return point_losses(
                metric, points, side, overstock_tolerance=overstock_tolerance, lean=canary or 0.0
            )

        # The test's "candidate better" direction, turned round: is the canary's loss higher?
        test = paired_series_test(
            series=points.series,
            candidate_error=losses("champion"),
            champion_error=losses("canary"),
        )
    breached = (
        worse_by is not None and worse_by > tolerance and float(test["confidence"]) >= confidence
    )
    return json_ready(
        {
            "metric": metric,
            "scope": scope,
            "tolerance": tolerance,
            "unit": UNITS[metric],
            "canary": canary,
            "champion": champion,
            "worse_by": worse_by,
            "confidence": test["confidence"],
            "required_confidence": confidence,
            "test": test.get("name"),
            "n_series": points.n_series,
            "n_points": int(points.actual.size),
            "breached": bool(breached),
        }
    )


def check_guardrails(
    *,
    guardrails: list[dict[str, Any]],
    points: Points,
    confidence: float,
    overstock_tolerance: float,
) -> list[dict[str, Any]]:
    """Every guardrail over all canary series, then per department (departments sorted); each
    test needs the family's `confidence` shared out over all of them (Bonferroni)."""
    scopes = [(ALL_SERIES, points)]
    for department in sorted(set(points.department.tolist())):
        scopes.append((f"department:{department}", points.select(points.department == department)))
    each_needs = 1.0 - (1.0 - confidence) / max(len(scopes) * len(guardrails), 1)
    return [
        check_guardrail(
            metric=rule["metric"],
            tolerance=float(rule["tolerance"]),
            points=scoped,
            scope=scope,
            confidence=each_needs,
            overstock_tolerance=overstock_tolerance,
        )
        for scope, scoped in scopes
        for rule in guardrails
    ]


def describe_breach(result: dict[str, Any]) -> str:
    """One breached guardrail in words, with its numbers."""
    return (
        f"{result['metric']} on {result['scope']}: canary {_shown(result['canary'])} against "
        f"the champion's {_shown(result['champion'])}, worse by {_shown(result['worse_by'])} "
        f"(tolerance {result['tolerance']:g} {result['unit']}), confidence "
        f"{result['confidence']:.4f} (needs {result['required_confidence']:.4f}) over "
        f"{result['n_series']} series"
    )


def _shown(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"
