"""The promotion gate: candidate and champion scored on the same points, and a paired test over
series. A pure decision on arrays; where the points come from is `mlops.services.evaluation`
(walk-forward refits) and `mlops.services.judging` (stored daily forecasts)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from forecasting import metrics

if TYPE_CHECKING:
    from tenants.selectors import TenantPolicy

PAIRED_TEST = "wilcoxon_signed_rank_one_sided"
# The numbers shown for each side; only MAE, MAPE and coverage gate (the retail pack is shown).
METRIC_NAMES = (
    "mae",
    "mape",
    "wape",
    "bias",
    "stockout_miss_rate",
    "overstock_rate",
    *metrics.RETAIL_METRICS,
)


@dataclass(frozen=True)
class PromotionDecision:
    """Whether a candidate should replace the champion, with every number behind the answer."""

    promote: bool
    reason: str
    checks: dict[str, bool]
    candidate_metrics: dict[str, float | None]
    champion_metrics: dict[str, float | None]
    improvement: dict[str, float | None]
    test: dict[str, Any]
    thresholds: dict[str, float]
    n_points: int
    n_series: int
    # Filled in by evaluate_for_promotion: which versions, where the points came from.
    source: str = "replay"
    candidate: dict[str, Any] = field(default_factory=dict)
    champion: dict[str, Any] = field(default_factory=dict)
    replaces_id: int | None = None
    window: dict[str, Any] = field(default_factory=dict)
    evaluated_at: str = ""

    @property
    def confidence(self) -> float:
        return float(self.test.get("confidence") or 0.0)

    def as_evidence(self) -> dict[str, Any]:
        """The decision as JSON-ready data (ModelVersion.last_evaluation, transition evidence)."""
        return json_ready(dataclasses.asdict(self))


def json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return None if np.isnan(number) or np.isinf(number) else number
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def paired_series_test(
    *, series: np.ndarray, candidate_error: np.ndarray, champion_error: np.ndarray
) -> dict[str, Any]:
    """One-sided Wilcoxon signed-rank test over series that the candidate's mean absolute error
    is lower than the champion's; returns statistic, p_value, confidence (1 - p), n_series.

    Points of one series share a level and a season, so they are not independent; the series
    (its mean error over every evaluated day) is the unit the test counts.
    """
    codes, series_index = np.unique(series, return_inverse=True)
    counts = np.bincount(series_index, minlength=len(codes)).astype(np.float64)
    candidate_mean = np.bincount(series_index, weights=candidate_error) / np.maximum(counts, 1)
    champion_mean = np.bincount(series_index, weights=champion_error) / np.maximum(counts, 1)
    differences = champion_mean - candidate_mean
    n_series = int(len(codes))
    n_differing = int(np.count_nonzero(differences))
    result = {
        "name": PAIRED_TEST,
        "unit": "series",
        "n_series": n_series,
        "n_differing": n_differing,
        "series_better": int((differences > 0).sum()),
        "series_worse": int((differences < 0).sum()),
        "statistic": None,
        "p_value": 1.0,
        "confidence": 0.0,
    }
    if n_differing < 2:
        # No evidence either way: identical errors (an A/A retrain) or a single series.
        return result
    test = stats.wilcoxon(differences, alternative="greater", zero_method="wilcox")
    p_value = float(test.pvalue)
    result.update(statistic=float(test.statistic), p_value=p_value, confidence=1.0 - p_value)
    return result


def decide_promotion(
    *,
    actual: np.ndarray,
    candidate_forecast: np.ndarray,
    champion_forecast: np.ndarray,
    series: np.ndarray,
    candidate_coverage: float | None,
    champion_coverage: float | None,
    min_improvement_pct: float,
    min_confidence: float,
    overstock_tolerance: float = metrics.DEFAULT_OVERSTOCK_TOLERANCE,
    history: np.ndarray | None = None,
    candidate_interval: tuple[np.ndarray, np.ndarray] | None = None,
    champion_interval: tuple[np.ndarray, np.ndarray] | None = None,
) -> PromotionDecision:
    """Judge a candidate against the champion on the same points (one entry per series-day;
    `series` names each point's series). Promote only when MAE and MAPE each improve by >=
    `min_improvement_pct`, coverage does not drop, and the paired test's confidence is >=
    `min_confidence`.

    The retail pack is shown beside them, not gated on: with [series, days] arrays the
    tracking signal, with `history` (each series' sales before the first day) FVA, MASE and
    RMSSE, with a side's (lower, upper) interval its wQL."""
    grid = np.shape(actual)
    actual = np.asarray(actual, dtype=np.float64).reshape(-1)
    candidate_forecast = np.asarray(candidate_forecast, dtype=np.float64).reshape(-1)
    champion_forecast = np.asarray(champion_forecast, dtype=np.float64).reshape(-1)
    series = np.asarray(series).reshape(-1)
    # The same points on both sides: known actual, and a forecast from each.
    shared = ~np.isnan(actual) & ~np.isnan(candidate_forecast) & ~np.isnan(champion_forecast)
    scored = np.where(shared, actual, np.nan).reshape(grid)
    candidate_metrics, champion_metrics = (
        _side_metrics(
            scored,
            forecast.reshape(grid),
            interval=interval,
            coverage=coverage,
            overstock_tolerance=overstock_tolerance,
            history=history,
        )
        for forecast, interval, coverage in (
            (candidate_forecast, candidate_interval, candidate_coverage),
            (champion_forecast, champion_interval, champion_coverage),
        )
    )
    improvement = {
        "mae_pct": metrics.improvement_pct(champion_metrics["mae"], candidate_metrics["mae"]),
        "mape_pct": metrics.improvement_pct(champion_metrics["mape"], candidate_metrics["mape"]),
    }
    test = paired_series_test(
        series=series[shared],
        candidate_error=np.abs(actual[shared] - candidate_forecast[shared]),
        champion_error=np.abs(actual[shared] - champion_forecast[shared]),
    )
    checks, promote, reason = _verdict(
        improvement=improvement,
        confidence=test["confidence"],
        coverage=(candidate_coverage, champion_coverage),
        min_improvement_pct=min_improvement_pct,
        min_confidence=min_confidence,
    )
    return PromotionDecision(
        promote=promote,
        reason=reason,
        checks=checks,
        candidate_metrics=candidate_metrics,
        champion_metrics=champion_metrics,
        improvement=improvement,
        test=test,
        thresholds={
            "min_improvement_pct": float(min_improvement_pct),
            "min_confidence": float(min_confidence),
        },
        n_points=int(shared.sum()),
        n_series=test["n_series"],
    )


def _side_metrics(
    actual: np.ndarray,
    forecast: np.ndarray,
    *,
    interval: tuple[np.ndarray, np.ndarray] | None,
    coverage: float | None,
    overstock_tolerance: float,
    history: np.ndarray | None,
) -> dict[str, float | None]:
    """One side's METRIC_NAMES on the shared points (`actual` is NaN off them), and its series
    coverage."""
    lower, upper = (
        (None, None)
        if interval is None
        else (np.asarray(bound, dtype=np.float64).reshape(actual.shape) for bound in interval)
    )
    values = metrics.compute_all(
        actual,
        forecast,
        lower=lower,
        upper=upper,
        overstock_tolerance=overstock_tolerance,
        history=history,
    )
    return {**{name: values[name] for name in METRIC_NAMES}, "coverage": coverage}


def _verdict(
    *,
    improvement: dict[str, float | None],
    confidence: float,
    coverage: tuple[float | None, float | None],
    min_improvement_pct: float,
    min_confidence: float,
) -> tuple[dict[str, bool], bool, str]:
    """The gate's checks (MAE and MAPE each better by the minimum, coverage kept, the paired
    test's confidence), whether all pass, and the reason in words."""
    candidate_coverage, champion_coverage = coverage
    checks = {
        "mae": improvement["mae_pct"] is not None and improvement["mae_pct"] >= min_improvement_pct,
        "mape": improvement["mape_pct"] is not None
        and improvement["mape_pct"] >= min_improvement_pct,
        "coverage": champion_coverage is None
        or (candidate_coverage is not None and candidate_coverage >= champion_coverage),
        "confidence": confidence >= min_confidence,
    }
    promote = all(checks.values())
    reason = _explain(
        promote=promote,
        checks=checks,
        improvement=improvement,
        confidence=confidence,
        coverage=coverage,
        min_improvement_pct=min_improvement_pct,
        min_confidence=min_confidence,
    )
    return checks, promote, reason


def _explain(
    *,
    promote: bool,
    checks: dict[str, bool],
    improvement: dict[str, float | None],
    confidence: float,
    coverage: tuple[float | None, float | None],
    min_improvement_pct: float,
    min_confidence: float,
) -> str:
    facts = (
        f"MAE {metrics.better_or_worse(improvement['mae_pct'])}, MAPE "
        f"{metrics.better_or_worse(improvement['mape_pct'])} (each needs {min_improvement_pct:g}% "
        f"better); confidence {confidence:.3f} (needs {min_confidence:g}); series coverage "
        f"{_share(coverage[0])} against the champion's {_share(coverage[1])}"
    )
    if promote:
        return f"Beats the champion: {facts}."
    failed = ", ".join(name for name, passed in checks.items() if not passed)
    return f"Does not clear the promotion gate ({failed}): {facts}."


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def promotion_thresholds(policy: TenantPolicy) -> dict[str, float]:
    """The gate's thresholds from the tenant's policy."""
    return {
        "min_improvement_pct": float(policy.promotion_min_improvement_pct),
        "min_confidence": float(policy.promotion_min_confidence),
        "overstock_tolerance": float(policy.overstock_tolerance),
    }
