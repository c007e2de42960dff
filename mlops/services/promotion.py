"""Fair promotion: candidate and champion scored on the same points, gated by a paired test."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from django.db import transaction
from django.utils import timezone
from django_fsm import TransitionNotAllowed
from scipy import stats

from forecasting import backtesting, metrics
from forecasting.panel import Panel
from mlops.models import GLOBAL_SEGMENT, ModelVersion
from mlops.selectors import current_tenant, get_champion_model, incumbent_for
from mlops.services.data import PROMOTIONS_KNOWN_AHEAD, evaluation_panel, window_days_of
from mlops.services.lifecycle import promote_to_champion, require_permission

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from tenants.models import Tenant

PAIRED_TEST = "wilcoxon_signed_rank_one_sided"
METRIC_NAMES = ("mae", "mape", "wape", "bias", "stockout_miss_rate", "overstock_rate")
# Four weekly windows: 28 days per series is enough for the paired test over series while the
# points stay recent (the evaluation says how the recipes do now, not a year ago).
DEFAULT_EVALUATION_WINDOWS = 4
# The gate reads point errors only, and interval calibration does not change point forecasts;
# skipping it in the evaluation's refits halves their cost (intervals are judged by backtests).
POINT_FORECASTS_ONLY = {"calibration_windows": 0}
JUDGEABLE = (
    ModelVersion.Status.CANDIDATE,
    ModelVersion.Status.SHADOW,
    ModelVersion.Status.CHALLENGER,
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
        return _json_ready(dataclasses.asdict(self))


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
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
) -> PromotionDecision:
    """Judge a candidate against the champion on the same points (flat arrays, one entry per
    series-day; `series` names each point's series). Promote only when MAE and MAPE each
    improve by >= `min_improvement_pct`, coverage does not drop, and the paired test's
    confidence is >= `min_confidence`."""
    actual = np.asarray(actual, dtype=np.float64).reshape(-1)
    candidate_forecast = np.asarray(candidate_forecast, dtype=np.float64).reshape(-1)
    champion_forecast = np.asarray(champion_forecast, dtype=np.float64).reshape(-1)
    series = np.asarray(series).reshape(-1)
    # The same points on both sides: known actual, and a forecast from each.
    shared = ~np.isnan(actual) & ~np.isnan(candidate_forecast) & ~np.isnan(champion_forecast)

    def side(forecast: np.ndarray) -> dict[str, float | None]:
        values = metrics.compute_all(
            actual[shared], forecast[shared], overstock_tolerance=overstock_tolerance
        )
        return {name: values[name] for name in METRIC_NAMES}

    candidate_metrics = side(candidate_forecast)
    champion_metrics = side(champion_forecast)
    candidate_metrics["coverage"] = candidate_coverage
    champion_metrics["coverage"] = champion_coverage

    improvement = {
        "mae_pct": metrics.improvement_pct(champion_metrics["mae"], candidate_metrics["mae"]),
        "mape_pct": metrics.improvement_pct(champion_metrics["mape"], candidate_metrics["mape"]),
    }
    test = paired_series_test(
        series=series[shared],
        candidate_error=np.abs(actual[shared] - candidate_forecast[shared]),
        champion_error=np.abs(actual[shared] - champion_forecast[shared]),
    )
    checks = {
        "mae": improvement["mae_pct"] is not None and improvement["mae_pct"] >= min_improvement_pct,
        "mape": improvement["mape_pct"] is not None
        and improvement["mape_pct"] >= min_improvement_pct,
        "coverage": champion_coverage is None
        or (candidate_coverage is not None and candidate_coverage >= champion_coverage),
        "confidence": test["confidence"] >= min_confidence,
    }
    promote = all(checks.values())
    return PromotionDecision(
        promote=promote,
        reason=_explain(
            promote=promote,
            checks=checks,
            improvement=improvement,
            confidence=test["confidence"],
            coverage=(candidate_coverage, champion_coverage),
            min_improvement_pct=min_improvement_pct,
            min_confidence=min_confidence,
        ),
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


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


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
        f"MAE better by {_pct(improvement['mae_pct'])}, MAPE by {_pct(improvement['mape_pct'])} "
        f"(need {min_improvement_pct:g}%); confidence {confidence:.3f} (need {min_confidence:g}); "
        f"coverage {coverage[0]} vs {coverage[1]}"
    )
    if promote:
        return f"Beats the champion: {facts}."
    failed = ", ".join(name for name, passed in checks.items() if not passed)
    return f"Does not clear the promotion gate ({failed}): {facts}."


def promotion_thresholds(tenant: Tenant) -> dict[str, float]:
    return {
        "min_improvement_pct": float(tenant.promotion_min_improvement_pct),
        "min_confidence": float(tenant.promotion_min_confidence),
        "overstock_tolerance": float(tenant.overstock_tolerance),
    }


# -- evidence from walk-forward windows ----------------------------------------------------------
#
# Why refit both recipes instead of scoring the two stored artifacts on recent days: a fresh
# candidate was trained on data up to yesterday, so any recent window is inside its training
# data while the champion, trained weeks ago, sees it for the first time. Scoring the artifacts
# would reward the candidate for having seen the answers. Refitting each recipe (algorithm,
# hyperparameters, training-window length, segment) on the days before each cutoff gives both
# sides the same information and the same target days. Shadow predictions with actuals are the
# other fair source; they need weeks of a version running beside the champion, which a
# retrain that is judged the night it is trained does not have.


@dataclass(frozen=True)
class Recipe:
    """What a version is trained from: refitting a recipe on earlier data reproduces it."""

    algorithm: str
    hyperparameters: dict[str, Any]
    window_days: int
    segment: str

    @classmethod
    def of(cls, version: ModelVersion) -> Recipe:
        return cls(
            algorithm=version.algorithm,
            hyperparameters=dict(version.hyperparameters),
            window_days=window_days_of(version),
            segment=version.segment,
        )

    def series_mask(self, panel: Panel) -> np.ndarray:
        """The panel rows this recipe trains on and forecasts (its segment's series)."""
        if self.segment == GLOBAL_SEGMENT:
            return np.ones(panel.n_series, dtype=bool)
        department = self.segment.split(":", 1)[1]
        return panel.departments == department


@dataclass(frozen=True)
class EvaluationPoints:
    """Both sides' forecasts of the same series and days, [n_series, n_windows * horizon]."""

    series: np.ndarray
    actual: np.ndarray
    candidate: np.ndarray
    champion: np.ndarray
    candidate_coverage: float | None
    champion_coverage: float | None
    cutoffs: list[dt.date]
    horizon: int

    def decide(self, *, thresholds: dict[str, float]) -> PromotionDecision:
        return decide_promotion(
            actual=self.actual,
            candidate_forecast=self.candidate,
            champion_forecast=self.champion,
            series=np.repeat(self.series, self.actual.shape[1]),
            candidate_coverage=self.candidate_coverage,
            champion_coverage=self.champion_coverage,
            min_improvement_pct=thresholds["min_improvement_pct"],
            min_confidence=thresholds["min_confidence"],
            overstock_tolerance=thresholds.get(
                "overstock_tolerance", metrics.DEFAULT_OVERSTOCK_TOLERANCE
            ),
        )


def _recipe_windows(
    *, recipe: Recipe, panel: Panel, rows: np.ndarray, cutoffs: list[dt.date], horizon: int
) -> dict[str, np.ndarray | list[float | None]]:
    """Walk the recipe forward over `cutoffs` on its own series, each window refit on its own
    training window before the cutoff; returns the forecasts of panel `rows` per window."""
    own_rows = np.flatnonzero(recipe.series_mask(panel))
    position = {row: index for index, row in enumerate(own_rows)}
    missing = [row for row in rows if row not in position]
    if missing:
        raise ValueError(f"the {recipe.segment} recipe does not forecast every evaluated series")
    take = np.array([position[row] for row in rows], dtype=np.int64)
    windows = backtesting.walk_forward(
        algorithm=recipe.algorithm,
        hyperparameters={**recipe.hyperparameters, **POINT_FORECASTS_ONLY},
        panel=panel.select(own_rows),
        cutoffs=cutoffs,
        horizon=horizon,
        training_days=recipe.window_days,
        promotions_known=PROMOTIONS_KNOWN_AHEAD,
    )
    parts: dict[str, list] = {"forecast": [], "coverage": []}
    for cutoff, result in zip(cutoffs, windows, strict=True):
        parts["forecast"].append(result.forecast[take])
        active = metrics.active_series(panel.until(cutoff).quantity[rows])
        forecasted = ~np.isnan(result.forecast[take]).any(axis=1)
        parts["coverage"].append(metrics.coverage(active=active, forecasted=forecasted))
    return {
        "forecast": np.concatenate(parts["forecast"], axis=1),
        "coverage": parts["coverage"],
    }


def _mean_or_none(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return float(np.mean(known)) if known else None


def walk_forward_points(
    *,
    candidate: Recipe,
    champion: Recipe,
    panel: Panel,
    windows: int = DEFAULT_EVALUATION_WINDOWS,
    horizon: int = 7,
) -> EvaluationPoints:
    """Refit both recipes at each of the last `windows` weekly cutoffs of `panel` on data before
    the cutoff, and forecast the same days for the candidate's series."""
    cutoffs = backtesting.weekly_cutoffs(panel.last_day, days=windows * horizon, window=horizon)
    rows = np.flatnonzero(candidate.series_mask(panel))
    if not len(rows):
        raise ValueError(f"no sales of {candidate.segment} to evaluate on")
    sides = {
        side: _recipe_windows(
            recipe=recipe, panel=panel, rows=rows, cutoffs=cutoffs, horizon=horizon
        )
        for side, recipe in (("candidate", candidate), ("champion", champion))
    }
    first = panel.day_position(cutoffs[0])
    actual = panel.quantity[rows, first : first + windows * horizon]
    return EvaluationPoints(
        series=rows,
        actual=actual,
        candidate=sides["candidate"]["forecast"],
        champion=sides["champion"]["forecast"],
        candidate_coverage=_mean_or_none(sides["candidate"]["coverage"]),
        champion_coverage=_mean_or_none(sides["champion"]["coverage"]),
        cutoffs=cutoffs,
        horizon=horizon,
    )


# -- judging a candidate and acting on the verdict -----------------------------------------------


def version_summary(version: ModelVersion | None, recipe: Recipe | None = None) -> dict[str, Any]:
    if version is None and recipe is None:
        return {}
    summary: dict[str, Any] = {}
    if version is not None:
        summary.update(id=version.pk, version=version.version, name=version.name)
    if recipe is not None:
        summary.update(
            algorithm=recipe.algorithm,
            segment=recipe.segment,
            window_days=recipe.window_days,
            hyperparameters=recipe.hyperparameters,
        )
    return summary


def first_model_decision(*, name: str, segment: str, points: dict[str, Any]) -> PromotionDecision:
    """The verdict for the first model of a name/segment: nothing to beat, it serves."""
    return PromotionDecision(
        promote=True,
        reason=f"First model of {name} [{segment}]: there is no champion to compare with.",
        checks={},
        candidate_metrics=points.get("metrics", {}),
        champion_metrics={},
        improvement={},
        test={},
        thresholds={},
        n_points=int(points.get("metrics", {}).get("n_points") or 0),
        n_series=int(points.get("n_series", 0)),
        source="first_model",
        window=points.get("window", {}),
        evaluated_at=timezone.now().isoformat(),
    )


def candidate_only_metrics(
    *, recipe: Recipe, panel: Panel, windows: int = DEFAULT_EVALUATION_WINDOWS, horizon: int = 7
) -> dict[str, Any]:
    """Walk-forward metrics of one recipe over the last weekly windows (a first model's
    held-out metrics, its baseline until T-1 results arrive)."""
    cutoffs = backtesting.weekly_cutoffs(panel.last_day, days=windows * horizon, window=horizon)
    rows = np.flatnonzero(recipe.series_mask(panel))
    side = _recipe_windows(recipe=recipe, panel=panel, rows=rows, cutoffs=cutoffs, horizon=horizon)
    first = panel.day_position(cutoffs[0])
    actual = panel.quantity[rows, first : first + windows * horizon]
    values = metrics.compute_all(actual, side["forecast"])
    values["coverage"] = _mean_or_none(side["coverage"])
    return {
        "metrics": values,
        "n_series": len(rows),
        "window": _window_summary(cutoffs, horizon),
    }


def _window_summary(cutoffs: list[dt.date], horizon: int) -> dict[str, Any]:
    return {
        "kind": "walk_forward",
        "windows": len(cutoffs),
        "horizon": horizon,
        "start": cutoffs[0],
        "end": cutoffs[-1] + dt.timedelta(days=horizon - 1),
        "cutoffs": cutoffs,
    }


def judge_candidate(
    *,
    name: str,
    candidate: Recipe,
    candidate_version: ModelVersion | None,
    panel: Panel,
    tenant: Tenant,
    windows: int = DEFAULT_EVALUATION_WINDOWS,
) -> PromotionDecision:
    """Compare a candidate recipe with the champion now serving its series on the same recent
    walk-forward windows; reads the registry, writes nothing."""
    incumbent = incumbent_for(name=name, segment=candidate.segment)
    if (
        candidate_version is not None
        and incumbent is not None
        and incumbent.pk == candidate_version.pk
    ):
        incumbent = None
    own_champion = get_champion_model(name=name, segment=candidate.segment)
    if incumbent is None:
        decision = first_model_decision(
            name=name,
            segment=candidate.segment,
            points=candidate_only_metrics(recipe=candidate, panel=panel, windows=windows),
        )
        return dataclasses.replace(
            decision, candidate=version_summary(candidate_version, candidate)
        )
    champion_recipe = Recipe.of(incumbent)
    points = walk_forward_points(
        candidate=candidate, champion=champion_recipe, panel=panel, windows=windows
    )
    decision = points.decide(thresholds=promotion_thresholds(tenant))
    return dataclasses.replace(
        decision,
        source="walk_forward",
        candidate=version_summary(candidate_version, candidate),
        champion=version_summary(incumbent, champion_recipe),
        replaces_id=own_champion.pk if own_champion else None,
        window=_window_summary(points.cutoffs, points.horizon),
        evaluated_at=timezone.now().isoformat(),
    )


def record_evaluation(*, version: ModelVersion, decision: PromotionDecision) -> PromotionDecision:
    """Keep the verdict on the version (health, admin and API show it); returns the verdict
    naming the version."""
    decision = dataclasses.replace(
        decision, candidate={**decision.candidate, **version_summary(version)}
    )
    version.last_evaluation = decision.as_evidence()
    fields = ["last_evaluation", "updated_at"]
    if not version.metrics and decision.candidate_metrics:
        version.metrics = _json_ready(decision.candidate_metrics)
        fields.append("metrics")
    version.save(update_fields=fields)
    return decision


@transaction.atomic
def apply_decision(
    *,
    version: ModelVersion,
    decision: PromotionDecision,
    actor: AbstractBaseUser | None,
    promote_if_better: bool = True,
) -> PromotionDecision:
    """Store the verdict on the version and, when it says so, promote it with the verdict as
    evidence. Raises as promote_to_champion."""
    decision = record_evaluation(version=version, decision=decision)
    if decision.promote and promote_if_better:
        promote_to_champion(version=version, actor=actor, reason=decision.reason, decision=decision)
    return decision


def evaluate_for_promotion(
    *,
    candidate: ModelVersion,
    actor: AbstractBaseUser | None = None,
    panel: Panel | None = None,
    windows: int = DEFAULT_EVALUATION_WINDOWS,
    promote_if_better: bool = True,
) -> PromotionDecision:
    """Judge a registered version against the champion serving its series on the same recent
    walk-forward windows, store the verdict, and promote it when it clears the tenant's gate
    (the first model of a name/segment is promoted directly); returns the decision.

    Raises TransitionNotAllowed for a version that is not a candidate, shadow or challenger,
    PermissionDenied when `actor` may not promote, ChampionChanged when the champion changed
    while the candidate was being judged.
    """
    if candidate.status not in JUDGEABLE:
        raise TransitionNotAllowed(
            f"{candidate.version} is {candidate.status}; only candidates, shadows and "
            "challengers are judged for promotion.",
            object=candidate,
        )
    if promote_if_better:
        require_permission(actor, "mlops.promote_modelversion", action="promote a model version")
    if panel is None:
        panel = evaluation_panel(versions=[candidate], windows=windows)
    decision = judge_candidate(
        name=candidate.name,
        candidate=Recipe.of(candidate),
        candidate_version=candidate,
        panel=panel,
        tenant=current_tenant(),
        windows=windows,
    )
    return apply_decision(
        version=candidate, decision=decision, actor=actor, promote_if_better=promote_if_better
    )
