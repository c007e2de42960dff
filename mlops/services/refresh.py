"""The refresh check: the champion's own recipe trained on fresher data replaces the champion
unless it is worse.

A recipe never has to beat itself by the gate's margin: two fits of one recipe differ only by
the data and the noise. What can go wrong is that the recipe, refit today, no longer does what
the champion did (a library upgrade, corrected history, a bug) or that the new artifact is
broken. So the check is a non-inferiority test plus sanity guards:

- **Not worse.** The same recipe is refit as it would have been a week ago (on its training
  window before the first of the last `REFRESH_CHECK_DAYS` days) and forecasts each of those
  days one day ahead, as the daily forecast does. Its errors are compared, series by series,
  with the forecasts the champion really served for those days (stored by the daily forecast;
  replayed from the champion's artifact where none were stored). It fails only when a one-sided
  paired test over series is confident, at the tenant's promotion confidence, that its error is
  above the champion's by more than the tenant's `refresh_margin_pct`.
- **Sanity guards on the new artifact**, forecasting from the last sales day: every active
  series forecast (coverage kept), no negative or non-finite value, a forecast level within a
  factor of two of the last four weeks' sales, and its one-day-ahead forecasts of the check
  days (which it trained on) not worse than the champion's served ones beyond the margin: a fit
  that cannot reproduce days it saw is broken.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.utils import timezone

from forecasting import metrics
from forecasting.families import ForecastModel, build_model
from forecasting.panel import Panel
from mlops.models import ModelVersion
from mlops.selectors import forecast_matrix, latest_forecasts
from mlops.services.evaluation import POINT_FORECASTS_ONLY, Recipe, version_summary
from mlops.services.promotion import json_ready, paired_series_test
from mlops.services.registry import load_model
from tenants.selectors import TenantPolicy

REFRESH_CHECK_DAYS = 7
# "Worse" also without the test's confidence (a small tenant's week): MAE above the champion's
# by more than twice the margin, or a bias further from zero by more than this many points.
# MAE barely moves when forecasts of skewed retail counts run low (the median of a skewed
# demand is below its mean), so a refresh forecasting 30% too little can match the champion's
# MAE: the bias bound catches it. Measured in tests/mlops/test_refresh_decisions.py: equally
# good refreshes differ from the champion by at most ~3% MAE and ~5 bias points.
MAE_FACTOR_OF_MARGIN = 2.0
BIAS_POINTS = 10.0
# Fewer scored days than this (a champion younger than the check week) cannot say "worse".
MIN_CHECK_DAYS = 3
# The forecast level of the next week against the mean daily sales of the last four weeks.
LEVEL_BOUNDS = (0.5, 2.0)
RECENT_LEVEL_DAYS = 28
STORED = "stored_forecasts"
REPLAYED = "champion_artifact_replay"


@dataclass(frozen=True)
class RefreshCheck:
    """Whether a refresh may replace the champion, with every number behind the answer."""

    passed: bool
    reason: str
    checks: dict[str, bool]
    refresh_metrics: dict[str, Any]
    champion_metrics: dict[str, Any]
    improvement: dict[str, float | None]
    test: dict[str, Any]
    margin_pct: float
    min_confidence: float
    n_points: int
    n_series: int
    source: str
    window: dict[str, Any]
    guards: dict[str, Any]
    candidate: dict[str, Any] = field(default_factory=dict)
    champion: dict[str, Any] = field(default_factory=dict)
    evaluated_at: str = ""

    def as_evidence(self) -> dict[str, Any]:
        return json_ready(dataclasses.asdict(self))


def one_day_ahead(model: ForecastModel, panel: Panel, days: list[dt.date]) -> np.ndarray:
    """The model's forecast of each day from the sales before it, as the daily forecast made on
    that day serves it (the target day's promotions as the calendar knew them then),
    [n_series, len(days)]."""
    columns = []
    for day in days:
        seen = panel.until(day + dt.timedelta(days=1)).as_seen_at(day)
        columns.append(model.predict(seen, day, horizon=1).values[:, 0])
    return np.stack(columns, axis=1).astype(np.float64)


def worse_beyond_margin(
    *,
    series: np.ndarray,
    refresh_error: np.ndarray,
    champion_error: np.ndarray,
    margin_pct: float,
) -> dict[str, Any]:
    """One-sided paired test over series that the refresh's mean absolute error exceeds the
    champion's inflated by the margin; its `confidence` is how sure it is that the refresh is
    worse by more than the margin."""
    return paired_series_test(
        series=series,
        candidate_error=champion_error * (1.0 + margin_pct / 100.0),
        champion_error=refresh_error,
    )


def decide_refresh(
    *,
    actual: np.ndarray,
    refresh_forecast: np.ndarray,
    champion_forecast: np.ndarray,
    series: np.ndarray,
    margin_pct: float,
    min_confidence: float,
) -> tuple[bool, dict[str, Any]]:
    """The non-inferiority part of the check on flat arrays (one entry per series-day): passes
    unless the refresh is worse than the champion: the paired test at least `min_confidence`
    sure its error is above the champion's by more than `margin_pct`, or its MAE above by more
    than twice the margin, or its bias further from zero by more than BIAS_POINTS. Returns
    (passed, numbers)."""
    actual = np.asarray(actual, dtype=np.float64).reshape(-1)
    refresh_forecast = np.asarray(refresh_forecast, dtype=np.float64).reshape(-1)
    champion_forecast = np.asarray(champion_forecast, dtype=np.float64).reshape(-1)
    series = np.asarray(series).reshape(-1)
    shared = ~np.isnan(actual) & ~np.isnan(refresh_forecast) & ~np.isnan(champion_forecast)
    y = actual[shared]
    refresh_error = np.abs(y - refresh_forecast[shared])
    champion_error = np.abs(y - champion_forecast[shared])
    test = worse_beyond_margin(
        series=series[shared],
        refresh_error=refresh_error,
        champion_error=champion_error,
        margin_pct=margin_pct,
    )
    sides = {
        "refresh": metrics.compute_all(y, refresh_forecast[shared]),
        "champion": metrics.compute_all(y, champion_forecast[shared]),
    }
    improvement = {
        name: metrics.improvement_pct(sides["champion"][name], sides["refresh"][name])
        for name in ("mae", "mape", "wape")
    }
    bias = {side: sides[side]["bias"] for side in sides}
    bias_gap = abs(bias["refresh"]) - abs(bias["champion"]) if None not in bias.values() else None
    worse = {
        "confidently_worse": test["confidence"] >= min_confidence,
        "mae_far_worse": improvement["mae"] is not None
        and -improvement["mae"] > MAE_FACTOR_OF_MARGIN * margin_pct,
        "bias_far_worse": bias_gap is not None and bias_gap > BIAS_POINTS,
    }
    passed = bool(shared.any()) and not any(worse.values())
    return passed, {
        "worse": worse,
        "bias_gap_points": bias_gap,
        "refresh": sides["refresh"],
        "champion": sides["champion"],
        "improvement": improvement,
        "test": {**test, "question": f"refresh worse than champion by over {margin_pct:g}%"},
        "n_points": int(shared.sum()),
        "n_series": int(len(np.unique(series[shared]))),
    }


def _champion_served(
    *, champion: ModelVersion, panel: Panel, days: list[dt.date]
) -> tuple[np.ndarray, str]:
    """What the champion served for `days` (stored), or its artifact's one-day-ahead forecasts
    where the daily forecast stored none."""
    stored = forecast_matrix(
        latest_forecasts(version_ids=[champion.pk], start=days[0], end=days[-1]),
        panel=panel,
        version_id=champion.pk,
    )
    first = panel.day_position(days[0])
    served = stored[:, first : first + len(days)]
    if not np.isnan(served).all():
        return served, STORED
    return one_day_ahead(load_model(champion), panel, days), REPLAYED


def _guards(
    *,
    model: ForecastModel,
    panel: Panel,
    check_days: list[dt.date],
    champion_served: np.ndarray,
    margin_pct: float,
) -> tuple[dict[str, bool], dict[str, Any]]:
    """The sanity guards on the new artifact, and their numbers."""
    last_day = panel.last_day.date()
    active = metrics.active_series(panel.quantity)
    upcoming = model.predict(panel, last_day + dt.timedelta(days=1), horizon=7).values
    upcoming = upcoming.astype(np.float64)
    finite = np.isfinite(upcoming)
    forecast_series = finite.all(axis=1)
    recent = panel.quantity[:, -RECENT_LEVEL_DAYS:]
    recent_daily = float(np.nansum(recent[active]) / max(recent.shape[1], 1))
    next_daily = float(np.nansum(np.where(finite, upcoming, 0.0)[active]) / upcoming.shape[1])
    level = next_daily / recent_daily if recent_daily > 0 else None
    seen_days = one_day_ahead(model, panel, check_days)
    first = panel.day_position(check_days[0])
    actual = panel.quantity[:, first : first + len(check_days)].astype(np.float64)
    both = np.where(np.isnan(seen_days) | np.isnan(champion_served), np.nan, actual)
    fitted_mae = metrics.mae(both, seen_days)
    served_mae = metrics.mae(both, champion_served)
    fitted_bias, served_bias = metrics.bias(both, seen_days), metrics.bias(both, champion_served)
    bias_gap = (
        abs(fitted_bias) - abs(served_bias) if None not in (fitted_bias, served_bias) else None
    )
    numbers = {
        "active_series": int(active.sum()),
        "forecast_series": int((forecast_series & active).sum()),
        "negative_values": int((upcoming[finite] < 0).sum()),
        "non_finite_values": int((~finite[active]).sum()),
        "level_ratio": level,
        "level_bounds": LEVEL_BOUNDS,
        "check_days_mae": fitted_mae,
        "champion_check_days_mae": served_mae,
        "check_days_bias_gap_points": bias_gap,
    }
    checks = {
        "coverage": bool(forecast_series[active].all()) if active.any() else True,
        "no_negative": numbers["negative_values"] == 0 and numbers["non_finite_values"] == 0,
        "level": level is not None and LEVEL_BOUNDS[0] <= level <= LEVEL_BOUNDS[1],
        "fits_check_days": fitted_mae is not None
        and served_mae is not None
        and fitted_mae <= served_mae * (1.0 + margin_pct / 100.0)
        and (bias_gap is None or bias_gap <= BIAS_POINTS),
    }
    return checks, numbers


def _explain(checks: dict[str, bool], numbers: dict[str, Any], guards: dict[str, Any]) -> str:
    if not checks["enough_days"]:
        return (
            f"Refresh rejected: the champion has served only {numbers['days']} day(s) it was not "
            f"trained on (needs {MIN_CHECK_DAYS}); it is too young to be refreshed."
        )
    change = metrics.better_or_worse(numbers["improvement"]["mae"])
    confidence = numbers["test"]["confidence"]
    facts = (
        f"refit a week earlier, the recipe's MAE on the last {numbers['days']} day(s) is {change} "
        f"than what the champion served ({numbers['n_points']:,} points; confidence it is worse "
        f"by over the margin {confidence:.3f})"
    )
    if all(checks.values()):
        return f"Refresh replaces the champion: {facts}; the new model's guards hold."
    failed = []
    worse = numbers.get("worse") or {}
    why_worse = {
        "confidently_worse": "the test is sure its error is above the champion's beyond the margin",
        "mae_far_worse": "its MAE is far above the champion's",
        "bias_far_worse": f"its bias is {numbers.get('bias_gap_points') or 0:.1f} points further "
        "from zero than the champion's",
    }
    labels = {
        "not_worse": "it is worse than the champion ("
        + ", ".join(why_worse[name] for name, on in worse.items() if on)
        + ")",
        "coverage": (
            f"it forecasts {guards.get('forecast_series')} of {guards.get('active_series')} "
            "active series"
        ),
        "no_negative": "it gives negative or missing values",
        "level": f"its forecast level is {guards.get('level_ratio') or 0:.2f} of recent sales",
        "fits_check_days": "it does not reproduce the days it was trained on",
    }
    for name, passed in checks.items():
        if not passed:
            failed.append(labels.get(name, name))
    return f"Refresh rejected ({'; '.join(failed)}): {facts}."


def _check_days(*, champion: ModelVersion, last_day: dt.date) -> list[dt.date]:
    """The held-out days of the check: the last REFRESH_CHECK_DAYS up to `last_day`, only those
    after the champion's training data (the days it had not seen are the only fair ones)."""
    first = last_day - dt.timedelta(days=REFRESH_CHECK_DAYS - 1)
    if champion.training_end is not None:
        first = max(first, champion.training_end + dt.timedelta(days=1))
    return [first + dt.timedelta(days=step) for step in range((last_day - first).days + 1)]


def _refit_before(*, recipe: Recipe, panel: Panel, days: list[dt.date]) -> np.ndarray:
    """The recipe refit on its training window before the first check day, forecasting each
    check day one day ahead (as the champion was served)."""
    first = days[0]
    training = panel.window(first - dt.timedelta(days=recipe.window_days), first).until(first)
    earlier = build_model(
        recipe.algorithm, **{**recipe.hyperparameters, **POINT_FORECASTS_ONLY}
    ).fit(training)
    return one_day_ahead(earlier, panel, days)


def check_refresh(
    *,
    champion: ModelVersion,
    recipe: Recipe,
    model: ForecastModel,
    panel: Panel,
    policy: TenantPolicy,
) -> RefreshCheck:
    """Whether `model` (the champion's recipe trained on `panel`'s latest days) may replace the
    champion, by the non-inferiority test and the guards above; reads, writes nothing."""
    segment = panel.select(recipe.series_mask(panel))
    days = _check_days(champion=champion, last_day=segment.last_day.date())
    margin, confidence = float(policy.refresh_margin_pct), float(policy.promotion_min_confidence)
    checks: dict[str, bool] = {"enough_days": len(days) >= MIN_CHECK_DAYS}
    numbers: dict[str, Any] = {
        "refresh": {},
        "champion": {},
        "improvement": {"mae": None, "mape": None, "wape": None},
        "test": {"confidence": 0.0},
        "n_points": 0,
        "n_series": 0,
    }
    guards: dict[str, Any] = {}
    source = STORED
    if checks["enough_days"]:
        refit = _refit_before(recipe=recipe, panel=segment, days=days)
        served, source = _champion_served(champion=champion, panel=segment, days=days)
        first = segment.day_position(days[0])
        actual = segment.quantity[:, first : first + len(days)]
        checks["not_worse"], numbers = decide_refresh(
            actual=actual,
            refresh_forecast=refit,
            champion_forecast=served,
            series=np.repeat(np.arange(segment.n_series), len(days)),
            margin_pct=margin,
            min_confidence=confidence,
        )
        guard_checks, guards = _guards(
            model=model,
            panel=segment,
            check_days=days,
            champion_served=served,
            margin_pct=margin,
        )
        checks.update(guard_checks)
    numbers["days"] = len(days)
    return RefreshCheck(
        passed=all(checks.values()),
        reason=_explain(checks, numbers, guards),
        checks=checks,
        refresh_metrics=numbers["refresh"],
        champion_metrics=numbers["champion"],
        improvement=numbers["improvement"],
        test=numbers["test"],
        margin_pct=margin,
        min_confidence=confidence,
        n_points=numbers["n_points"],
        n_series=numbers["n_series"],
        source=source,
        window={
            "kind": "refresh_check",
            "start": days[0] if days else None,
            "end": days[-1] if days else None,
            "days": len(days),
            "refit_before": days[0] if days else None,
        },
        guards=guards,
        champion=version_summary(champion, Recipe.of(champion)),
        candidate=version_summary(None, recipe),
        evaluated_at=timezone.now().isoformat(),
    )
