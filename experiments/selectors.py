"""Reads of experiments: their results, computed by the system, and their step-by-step log."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import F, Q, QuerySet, Value
from django.utils import timezone

from experiments.models import ExperimentEvent, ModelExperiment
from forecasting import metrics
from mlops.models import ModelVersion, ShadowPrediction
from mlops.selectors import incumbent_for
from mlops.services.data import evaluation_panel
from mlops.services.evaluation import DEFAULT_EVALUATION_WINDOWS, Recipe, walk_forward_points
from mlops.services.promotion import paired_series_test
from tenants.selectors import tenant_policy

COMPARED_METRICS = ("mae", "mape", "wape")
SOURCE_SHADOW = "shadow"
SOURCE_WALK_FORWARD = "walk_forward"
SOURCE_NONE = "none"


@dataclass(frozen=True)
class ComparedPoints:
    """The experimental version's and the baseline's forecasts of the same points, flat."""

    source: str
    series: np.ndarray  # one key per point: "store|product"
    days: np.ndarray  # target date of each point
    actual: np.ndarray
    experimental: np.ndarray
    baseline: np.ndarray
    baseline_versions: list[dict[str, Any]]

    @classmethod
    def concatenate(cls, parts: list[ComparedPoints]) -> ComparedPoints:
        return cls(
            source="+".join(sorted({part.source for part in parts})),
            series=np.concatenate([part.series for part in parts]),
            days=np.concatenate([part.days for part in parts]),
            actual=np.concatenate([part.actual for part in parts]),
            experimental=np.concatenate([part.experimental for part in parts]),
            baseline=np.concatenate([part.baseline for part in parts]),
            baseline_versions=[v for part in parts for v in part.baseline_versions],
        )


def _versions_by_pk(pks) -> dict[int, ModelVersion]:
    return {version.pk: version for version in ModelVersion.objects.filter(pk__in=list(pks))}


def _brief(version: ModelVersion) -> dict[str, Any]:
    return {
        "id": version.pk,
        "version": version.version,
        "segment": version.segment,
        "algorithm": version.algorithm,
    }


def shadow_points(version: ModelVersion) -> ComparedPoints:
    """The version's shadow forecasts that have actuals, beside the answer of the version that
    served each point (a day is forecast on up to seven runs, each a point)."""
    rows = ShadowPrediction.objects.filter(
        challenger_version=version, actual__isnull=False
    ).values_list(
        "store_id",
        "product_id",
        "target_date",
        "actual",
        "challenger_value",
        "champion_value",
        "champion_version_id",
    )
    frame = pd.DataFrame.from_records(
        list(rows),
        columns=["store", "product", "day", "actual", "experimental", "baseline", "served_by"],
    )
    served_by = _versions_by_pk(frame["served_by"].unique()) if len(frame) else {}
    return ComparedPoints(
        source=SOURCE_SHADOW,
        series=(frame["store"].astype(str) + "|" + frame["product"].astype(str)).to_numpy(),
        days=frame["day"].to_numpy(dtype=object),
        actual=frame["actual"].to_numpy(dtype=np.float64),
        experimental=frame["experimental"].to_numpy(dtype=np.float64),
        baseline=frame["baseline"].to_numpy(dtype=np.float64),
        baseline_versions=[_brief(served_by[pk]) for pk in sorted(served_by)],
    )


def walk_forward_comparison(
    version: ModelVersion, *, windows: int = DEFAULT_EVALUATION_WINDOWS
) -> ComparedPoints | None:
    """Both recipes, the version's and that of the champion serving its series now, refitted
    before each of the last `windows` weekly cutoffs and scored on the same days; None when no
    other champion serves its series."""
    incumbent = incumbent_for(name=version.name, segment=version.segment)
    if incumbent is None or incumbent.pk == version.pk:
        return None
    panel = evaluation_panel(versions=[version], windows=windows)
    points = walk_forward_points(
        candidate=Recipe.of(version), champion=Recipe.of(incumbent), panel=panel, windows=windows
    )
    n_days = points.actual.shape[1]
    keys = np.char.add(
        np.char.add(panel.stores[points.series].astype(str), "|"),
        panel.products[points.series].astype(str),
    )
    first = points.cutoffs[0]
    days = np.array([first + dt.timedelta(days=step) for step in range(n_days)], dtype=object)
    return ComparedPoints(
        source=SOURCE_WALK_FORWARD,
        series=np.repeat(keys, n_days),
        days=np.tile(days, len(keys)),
        actual=points.actual.reshape(-1).astype(np.float64),
        experimental=points.candidate.reshape(-1).astype(np.float64),
        baseline=points.champion.reshape(-1).astype(np.float64),
        baseline_versions=[_brief(incumbent)],
    )


def compare(points: ComparedPoints, *, success_metric: str, expected_pct: float) -> dict[str, Any]:
    """Errors of both sides on the points where both forecast and the actual is known, the
    improvement, a paired test over series, and whether the success criterion is met."""
    known = ~np.isnan(points.actual) & ~np.isnan(points.experimental) & ~np.isnan(points.baseline)
    actual = points.actual[known]
    sides = {
        side: {
            name: getattr(metrics, name)(actual, getattr(points, side)[known])
            for name in COMPARED_METRICS
        }
        for side in ("experimental", "baseline")
    }
    improvement = {
        name: metrics.improvement_pct(sides["baseline"][name], sides["experimental"][name])
        for name in COMPARED_METRICS
    }
    days = sorted(set(points.days[known]))
    test = paired_series_test(
        series=points.series[known],
        candidate_error=np.abs(actual - points.experimental[known]),
        champion_error=np.abs(actual - points.baseline[known]),
    )
    achieved = improvement.get(success_metric)
    unique_baselines = {each["id"]: each for each in points.baseline_versions}
    return {
        "source": points.source,
        "n_points": int(known.sum()),
        "n_series": int(len(np.unique(points.series[known]))),
        "n_days": len(days),
        "window": {
            "start": days[0].isoformat() if days else None,
            "end": days[-1].isoformat() if days else None,
        },
        "baseline_versions": [unique_baselines[pk] for pk in sorted(unique_baselines)],
        "experimental": sides["experimental"],
        "baseline": sides["baseline"],
        "improvement_pct": improvement,
        "paired_test": {
            key: test[key]
            for key in ("name", "n_series", "series_better", "series_worse", "confidence")
        },
        "meets_success_criterion": achieved is not None and achieved >= expected_pct,
    }


def _not_compared(
    version: ModelVersion, shadow_days: int, min_days: int, *, why: str
) -> dict[str, Any]:
    return {
        "source": SOURCE_NONE,
        "reason": f"{version.version} has {shadow_days} shadow day(s) with actuals (needs "
        f"{min_days}) and {why}",
        "n_points": 0,
        "improvement_pct": {name: None for name in COMPARED_METRICS},
        "meets_success_criterion": False,
    }


def experiment_results(*, experiment: ModelExperiment) -> dict[str, Any]:
    """The experiment's results, computed by the system: per segment, its version against the
    champion that served the same points, from shadow predictions with actuals when they cover
    at least the tenant's `min_shadow_days` target days, else from walk-forward backtests of
    both recipes on the same days; overall over every compared point; and whether each meets the success
    criterion (`success_metric` better by at least `expected_improvement_pct`)."""
    metric, expected = experiment.success_metric, experiment.expected_improvement_pct
    min_days = tenant_policy().min_shadow_days
    segments: dict[str, dict[str, Any]] = {}
    compared: list[ComparedPoints] = []
    for version in experiment.model_versions.order_by("segment", "pk"):
        shadow = shadow_points(version)
        shadow_days = len(set(shadow.days))
        # Below the tenant's minimum of shadow days the results come from walk-forward
        # backtests of both recipes instead (shown, but no adoption rests on them alone).
        try:
            points = shadow if shadow_days >= min_days else walk_forward_comparison(version)
        except ValueError as error:  # no sales to refit or score both recipes on
            points, why = None, f"no walk-forward backtest could compare it: {error}"
        else:
            why = f"no other champion serves {version.segment} to backtest against."
        if points is None:
            result = _not_compared(version, shadow_days, min_days, why=why)
        else:
            compared.append(points)
            result = compare(points, success_metric=metric, expected_pct=expected)
        segments[version.segment] = {
            "version": _brief(version),
            **result,
            "shadow_days_with_actuals": shadow_days,
        }
    overall = (
        compare(ComparedPoints.concatenate(compared), success_metric=metric, expected_pct=expected)
        if compared
        else None
    )
    return {
        "computed_at": timezone.now().isoformat(),
        "success_metric": metric,
        "expected_improvement_pct": expected,
        "min_shadow_days": min_days,
        "segments": segments,
        "overall": overall,
    }


def experiment_events(*, experiment: ModelExperiment) -> QuerySet[ExperimentEvent]:
    """The experiment's steps, oldest first, with who took each."""
    return experiment.events.order_by("created_at", "pk").select_related("actor")


def experiment_list(*, status: str | None = None) -> QuerySet[ModelExperiment]:
    """Experiments, newest first, with the usernames of the people involved
    (`proposed_by_username`, ...) and their versions' labels (`version_labels`, in the
    registry's order)."""
    experiments = ModelExperiment.objects.annotate(
        proposed_by_username=F("proposed_by__username"),
        approved_by_username=F("approved_by__username"),
        completed_by_username=F("completed_by__username"),
        version_labels=ArrayAgg(
            "model_versions__version",
            filter=Q(model_versions__isnull=False),
            # ModelVersion's own ordering, which the list showed before.
            order_by=[
                "model_versions__name",
                "model_versions__segment",
                "-model_versions__version_number",
            ],
            default=Value([]),
        ),
    )
    if status is not None:
        experiments = experiments.filter(status=status)
    return experiments
