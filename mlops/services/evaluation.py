"""Evidence for the gate from walk-forward refits: both recipes refit before the same cutoffs and
scored on the same days (a recipe change, a first model's held-out metrics, a manual check).

Why refit both recipes instead of scoring the two stored artifacts on recent days: a fresh
candidate was trained on data up to yesterday, so any recent window is inside its training data
while the champion, trained weeks ago, sees it for the first time. Scoring the artifacts would
reward the candidate for having seen the answers. Refitting each recipe (algorithm,
hyperparameters, training-window length, segment) on the days before each cutoff gives both
sides the same information and the same target days. Stored daily forecasts with actuals are the
other fair source (`mlops.services.judging`); they need days of a version running beside the
champion, which a retrain that is judged the night it is trained does not have.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from django.db import transaction
from django.utils import timezone
from django_fsm import TransitionNotAllowed

from forecasting import backtesting, metrics
from forecasting.demand_classes import classify
from forecasting.families import build_model
from forecasting.panel import Panel
from mlops.health_cache import forget_model_health
from mlops.models import GLOBAL_SEGMENT, ModelVersion
from mlops.selectors import get_champion_model, incumbent_for
from mlops.services.data import PROMOTIONS_KNOWN_AHEAD, evaluation_panel, window_days_of
from mlops.services.promotion import PromotionDecision, json_ready, promotion_thresholds
from tenants.selectors import tenant_policy

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

# Four weekly windows: 28 days per series is enough for the paired test over series while the
# points stay recent (the evaluation says how the recipes do now, not a year ago).
DEFAULT_EVALUATION_WINDOWS = 4
# The gate reads point errors only, and interval calibration does not change point forecasts;
# skipping it in the evaluation's refits halves their cost (intervals are judged by backtests).
POINT_FORECASTS_ONLY = {"calibration_windows": 0}


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

    def settings(self) -> dict[str, Any]:
        """Every hyperparameter, defaults filled in (what the family trains with)."""
        return build_model(self.algorithm, **self.hyperparameters).hyperparameters

    def same_as(self, other: Recipe) -> bool:
        """Whether retraining this recipe is a refresh of `other` (nothing but the data moves)."""
        return (
            self.algorithm == other.algorithm
            and self.segment == other.segment
            and self.window_days == other.window_days
            and self.settings() == other.settings()
        )

    def series_mask(self, panel: Panel) -> np.ndarray:
        """The panel rows this recipe trains on and forecasts (its segment's series)."""
        if self.segment == GLOBAL_SEGMENT:
            return np.ones(panel.n_series, dtype=bool)
        kind, name = self.segment.split(":", 1)
        if kind == "class":
            # A demand class is read from each series' recent days in the panel.
            return classify(panel.quantity).of(name)
        return panel.departments == name


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
    # Each series' sales before the first cutoff (scales MASE / RMSSE, seeds the naive for FVA).
    history: np.ndarray | None = None

    @property
    def days(self) -> list[dt.date]:
        first = self.cutoffs[0]
        return [first + dt.timedelta(days=step) for step in range(self.actual.shape[1])]

    def since(self, day: dt.date) -> EvaluationPoints:
        """The same points with the days before `day` left out (their actuals unknown)."""
        before = np.array([each < day for each in self.days])
        actual = self.actual.astype(np.float64, copy=True)
        actual[:, before] = np.nan
        return dataclasses.replace(self, actual=actual)

    def known_days(self) -> int:
        return int((~np.isnan(self.actual)).any(axis=0).sum())

    def decide(self, *, thresholds: dict[str, float]) -> PromotionDecision:
        from mlops.services.promotion import decide_promotion

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
            history=self.history,
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


def _history_before(panel: Panel, *, rows: np.ndarray, first: int) -> np.ndarray:
    """The `rows`' sales of the SCALE_HISTORY_DAYS before panel day `first`."""
    return panel.quantity[rows, max(first - metrics.SCALE_HISTORY_DAYS, 0) : max(first, 0)]


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
        history=_history_before(panel, rows=rows, first=first),
    )


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
    values = metrics.compute_all(
        actual, side["forecast"], history=_history_before(panel, rows=rows, first=first)
    )
    values["coverage"] = _mean_or_none(side["coverage"])
    return {
        "metrics": values,
        "n_series": len(rows),
        "window": _window_summary(cutoffs, horizon),
    }


def _window_summary(
    cutoffs: list[dt.date], horizon: int, *, since: dt.date | None = None
) -> dict[str, Any]:
    summary = {
        "kind": "walk_forward",
        "windows": len(cutoffs),
        "horizon": horizon,
        "start": cutoffs[0],
        "end": cutoffs[-1] + dt.timedelta(days=horizon - 1),
        "cutoffs": cutoffs,
    }
    if since is not None:
        summary.update(start=max(cutoffs[0], since), only_after_change=since)
    return summary


def judge_candidate(
    *,
    name: str,
    candidate: Recipe,
    candidate_version: ModelVersion | None,
    panel: Panel,
    windows: int = DEFAULT_EVALUATION_WINDOWS,
    since: dt.date | None = None,
) -> PromotionDecision:
    """Compare a candidate recipe with the champion now serving its series on the same recent
    walk-forward windows (only their days from `since` on, during a drift incident); reads the
    registry, writes nothing."""
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
    if since is not None:
        points = points.since(since)
    decision = points.decide(thresholds=promotion_thresholds(tenant_policy()))
    return dataclasses.replace(
        decision,
        source="walk_forward",
        candidate=version_summary(candidate_version, candidate),
        champion=version_summary(incumbent, champion_recipe),
        replaces_id=own_champion.pk if own_champion else None,
        window={
            **_window_summary(points.cutoffs, points.horizon, since=since),
            "days": points.known_days(),
        },
        evaluated_at=timezone.now().isoformat(),
    )


def record_evaluation(
    *, version: ModelVersion, evaluation: dict[str, Any], metrics_of: dict[str, Any] | None = None
) -> None:
    """Keep the latest verdict on the version (health, admin and API show it), and its
    held-out metrics when it has none yet."""
    version.last_evaluation = json_ready(evaluation)
    fields = ["last_evaluation", "updated_at"]
    if not version.metrics and metrics_of:
        version.metrics = json_ready(metrics_of)
        fields.append("metrics")
    version.save(update_fields=fields)
    forget_model_health()


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

    Raises TransitionNotAllowed for a version that is not waiting for a decision,
    PermissionDenied when `actor` may not promote, ChampionChanged when the champion changed
    while the candidate was being judged.
    """
    from mlops.services.lifecycle import promote_to_champion, require_permission

    if candidate.status not in ModelVersion.AWAITING_DECISION:
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
        windows=windows,
    )
    decision = dataclasses.replace(
        decision, candidate={**decision.candidate, **version_summary(candidate)}
    )
    with transaction.atomic():
        record_evaluation(
            version=candidate,
            evaluation=decision.as_evidence(),
            metrics_of=decision.candidate_metrics,
        )
        if decision.promote and promote_if_better:
            promote_to_champion(
                version=candidate, actor=actor, reason=decision.reason, decision=decision
            )
    return decision
