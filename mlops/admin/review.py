"""What a model version's review page shows: backtest charts, metrics, the last decision, lineage."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Q
from django.urls import reverse

from config.admin_tables import evidence_pairs
from forecasting.metrics import TRACKING_SIGNAL_BAND, better_or_worse
from mlops.admin.charts import LineChart, Series, line_chart
from mlops.models import (
    GLOBAL_SEGMENT,
    BacktestResult,
    DriftIncident,
    ModelTransition,
    ModelVersion,
)
from mlops.selectors import get_backtest_trend, incumbent_for, transition_history
from mlops.services.evaluation import Recipe

CHART_DAYS = 90


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    # "units": units per series-day; "pct": already in %; "share": 0..1 shown as %;
    # "vs_naive": % better or worse than the seasonal naive; "ratio": a plain number;
    # "signal": a tracking signal, said as the way the errors lean
    kind: str
    help: str


METRICS = (
    Metric("mae", "MAE", "units", "Mean absolute error, units per series-day (lower is better)"),
    Metric("mape", "MAPE", "pct", "Mean absolute % error over days with sales (lower is better)"),
    Metric("wape", "WAPE", "pct", "Absolute error as % of units sold (lower is better)"),
    Metric("bias", "Bias", "pct", "Over (+) or under (−) forecast, % of units sold"),
    Metric("stockout_miss_rate", "Stock-out misses", "share", "Days a forecast stock ran out"),
    Metric("overstock_rate", "Overstock", "share", "Days with over 1 unit and 20% too much"),
    Metric("coverage", "Coverage", "share", "Active series the model forecasts"),
    Metric("interval_coverage", "80% interval hit rate", "share", "Actuals inside the interval"),
    Metric(
        "fva_pct",
        "FVA",
        "vs_naive",
        "Forecast value added: MAE against the same weekday a week before, on the same points",
    ),
    Metric(
        "mase", "MASE", "ratio", "MAE over each series' in-sample weekly-naive MAE (< 1 beats it)"
    ),
    Metric(
        "rmsse",
        "RMSSE",
        "ratio",
        "RMSE over each series' in-sample weekly-naive RMSE (< 1 beats it)",
    ),
    Metric(
        "wql", "wQL", "ratio", "Weighted quantile loss of the interval and median (lower is better)"
    ),
    Metric(
        "tracking_signal",
        "Tracking signal",
        "signal",
        "Cumulative error over mean absolute error per series; beyond ±4 the forecast is biased",
    ),
)
METRICS_BY_KEY = {metric.key: metric for metric in METRICS}
TEST_NAMES = {"wilcoxon_signed_rank_one_sided": "one-sided Wilcoxon signed-rank test"}
CHECK_LABELS = {
    "mae": "MAE improves enough",
    "mape": "MAPE improves enough",
    "coverage": "Coverage does not drop",
    "confidence": "Paired test is confident enough",
}


def format_metric(key: str, value: Any) -> str:
    """A metric value with its unit, or an em dash when unknown."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    metric = METRICS_BY_KEY.get(key)
    if metric is None:
        return f"{value:,.3g}" if isinstance(value, float) else f"{value:,}"
    if metric.kind == "units":
        return f"{value:.2f} units"
    if metric.kind == "pct":
        return f"{value:.1f}%"
    if metric.kind == "vs_naive":
        return f"{better_or_worse(value)} than naive"
    if metric.kind == "ratio":
        return f"{value:.3f}"
    if metric.kind == "signal":
        return tracking_signal_words(value)
    return f"{value * 100:.1f}%"


def tracking_signal_words(value: float) -> str:
    """A tracking signal as the way the errors lean: "5.2 under-forecast (outside ±4)"."""
    if round(value, 1) == 0:
        return "0.0 (balanced)"
    lean = "under-forecast" if value > 0 else "over-forecast"
    outside = f" (outside ±{TRACKING_SIGNAL_BAND:g})" if abs(value) > TRACKING_SIGNAL_BAND else ""
    return f"{abs(value):.1f} {lean}{outside}"


def format_pct(value: Any, *, signed: bool = True) -> str:
    """An improvement in % as words ("3.2% better", "1.1% worse"), never a bare sign; with
    `signed=False` a plain share ("5.0%"). "—" when unknown."""
    if not isinstance(value, int | float):
        return "—"
    return better_or_worse(value) if signed else f"{value:.1f}%"


def department_of(segment: str) -> str | None:
    return segment.split(":", 1)[1] if segment != GLOBAL_SEGMENT else None


# -- the 90-day walk-forward chart ----------------------------------------------------------------


def walk_forward_rows(version: ModelVersion) -> list[dict[str, Any]]:
    """The version's weekly walk-forward windows that overlap the last CHART_DAYS, oldest first
    (the weekly backtest's 13 windows cover 91 days; the selector counts window starts)."""
    return get_backtest_trend(
        version=version, days=CHART_DAYS + 6, kind=BacktestResult.Kind.WALK_FORWARD
    )


def department_rows(
    champion: ModelVersion, *, department: str, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The champion's windows restricted to one department's series (from each window's
    per-department metrics), so a department's model is compared on its own series."""
    per_window = dict(
        BacktestResult.objects.filter(
            model_version=champion,
            kind=BacktestResult.Kind.WALK_FORWARD,
            window_end__in=[row["window_end"] for row in rows],
        ).values_list("window_end", "department_metrics")
    )
    sliced = []
    for row in rows:
        values = (per_window.get(row["window_end"]) or {}).get(department) or {}
        sliced.append(
            {
                **row,
                **{
                    metric.key: values.get(metric.key)
                    if isinstance(values.get(metric.key), int | float)
                    else None
                    for metric in METRICS
                },
            }
        )
    return sliced


def comparison_champion(version: ModelVersion) -> ModelVersion | None:
    """The champion serving the version's series now, unless that is the version itself."""
    champion = incumbent_for(name=version.name, segment=version.segment)
    return None if champion is None or champion.pk == version.pk else champion


@dataclass(frozen=True)
class WindowRow:
    start: dt.date
    end: dt.date
    values: list[str]
    champion_mae: str
    champion_mape: str
    n_points: int


def backtest_section(version: ModelVersion) -> dict[str, Any]:
    """Two charts (MAE, MAPE per window; this version and the champion on the same axes) and
    the per-window table behind them."""
    own = walk_forward_rows(version)
    champion = comparison_champion(version)
    champion_rows = walk_forward_rows(champion) if champion else []
    # A department's model is compared with the global champion on that department's series.
    champion_department = (
        department_of(version.segment)
        if champion is not None and champion.segment == GLOBAL_SEGMENT
        else None
    )
    if champion_department:
        champion_rows = department_rows(
            champion, department=champion_department, rows=champion_rows
        )
    this_label = f"{version.version} (this version)"
    champion_label = f"{champion.version} (champion)" if champion else ""
    if champion_department:
        champion_label += f", {champion_department} series"

    def chart(key: str, title: str, y_label: str, unit: str) -> LineChart:
        series = [
            Series(this_label, "this-version", [(row["window_end"], row[key]) for row in own])
        ]
        if champion_rows:
            series.append(
                Series(
                    champion_label,
                    "champion",
                    [(row["window_end"], row[key]) for row in champion_rows],
                )
            )
        return line_chart(title=title, y_label=y_label, unit=unit, series=series)

    by_end = {row["window_end"]: row for row in champion_rows}
    empty: dict[str, Any] = {}
    table = [
        WindowRow(
            start=row["window_start"],
            end=row["window_end"],
            values=[format_metric(metric.key, row[metric.key]) for metric in METRICS],
            champion_mae=format_metric("mae", by_end.get(row["window_end"], empty).get("mae")),
            champion_mape=format_metric("mape", by_end.get(row["window_end"], empty).get("mape")),
            n_points=row["n_points"],
        )
        for row in own
    ]
    return {
        "charts": [
            chart("mae", "MAE per weekly window", "MAE (units per series-day)", " units"),
            chart("mape", "MAPE per weekly window", "MAPE (%)", "%"),
        ],
        "champion": champion,
        # The weekly walk-forward refits a recipe: one of the champion's recipe is walked once,
        # as the champion's (mlops.services.backtesting.weekly_backtest_versions).
        "champions_recipe": bool(
            champion is not None
            and not own
            and champion.segment == version.segment
            and Recipe.of(version).same_as(Recipe.of(champion))
        ),
        "windows": table,
        "metrics": METRICS,
        "days": CHART_DAYS,
    }


# -- metrics and the last promotion decision ------------------------------------------------------


def metric_rows(values: dict[str, Any]) -> list[dict[str, str]]:
    return [
        {
            "label": metric.label,
            "help": metric.help,
            "value": format_metric(metric.key, values.get(metric.key)),
        }
        for metric in METRICS
        if metric.key in values
    ]


def decision_section(version: ModelVersion) -> dict[str, Any] | None:
    """The last promotion decision as tables: verdict, each gate check with its numbers, both
    sides' metrics on the same points, and the paired test."""
    evaluation = version.last_evaluation or {}
    if not evaluation:
        return None
    candidate = evaluation.get("candidate_metrics") or {}
    champion = evaluation.get("champion_metrics") or {}
    improvement = evaluation.get("improvement") or {}
    thresholds = evaluation.get("thresholds") or {}
    test = evaluation.get("test") or {}
    checks = evaluation.get("checks") or {}
    need_pct = thresholds.get("min_improvement_pct")
    need_confidence = thresholds.get("min_confidence")
    observed = {
        "mae": f"{format_pct(improvement.get('mae_pct'))} "
        f"(need ≥ {format_pct(need_pct, signed=False)} better)",
        "mape": f"{format_pct(improvement.get('mape_pct'))} "
        f"(need ≥ {format_pct(need_pct, signed=False)} better)",
        "coverage": f"{format_metric('coverage', candidate.get('coverage'))} vs "
        f"{format_metric('coverage', champion.get('coverage'))}",
        "confidence": f"{test.get('confidence', 0):.3f} (need ≥ {need_confidence})"
        if isinstance(test.get("confidence"), int | float)
        else "—",
    }
    window = evaluation.get("window") or {}
    champion_side = evaluation.get("champion") or {}
    return {
        "promote": bool(evaluation.get("promote")),
        "reason": evaluation.get("reason", ""),
        "source": evaluation.get("source", ""),
        "evaluated_at": _parse_time(evaluation.get("evaluated_at")),
        "champion_version": champion_side.get("version"),
        "champion_id": champion_side.get("id"),
        "replaces_id": evaluation.get("replaces_id"),
        "n_points": evaluation.get("n_points"),
        "n_series": evaluation.get("n_series"),
        "window": {
            "start": window.get("start"),
            "end": window.get("end"),
            "windows": window.get("windows"),
        },
        "checks": [
            {
                "label": CHECK_LABELS.get(name, name),
                "passed": bool(passed),
                "observed": observed.get(name, ""),
            }
            for name, passed in checks.items()
        ],
        "comparison": [
            {
                "label": metric.label,
                "candidate": format_metric(metric.key, candidate.get(metric.key)),
                "champion": format_metric(metric.key, champion.get(metric.key)),
                "improvement": format_pct(improvement.get(f"{metric.key}_pct"))
                if f"{metric.key}_pct" in improvement
                else "",
            }
            for metric in METRICS
            if metric.key in candidate or metric.key in champion
        ],
        "test": test,
        "test_name": TEST_NAMES.get(test.get("name"), test.get("name")),
        "thresholds": thresholds,
    }


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


# -- lineage and history --------------------------------------------------------------------------


def lineage_section(version: ModelVersion) -> dict[str, Any]:
    return {
        "parent": version.parent,
        "trigger": version.get_trigger_display(),
        "created_by": version.created_by,
        "training_start": version.training_start,
        "training_end": version.training_end,
        "training_days": (version.training_end - version.training_start).days + 1
        if version.training_start and version.training_end
        else None,
        "training_rows": version.training_rows,
        "features": list(version.features or []),
        "hyperparameters": sorted((version.hyperparameters or {}).items()),
        "sha256": version.artifact_sha256,
        "library_versions": sorted((version.library_versions or {}).items()),
    }


def incident_rows(version: ModelVersion) -> list[dict[str, Any]]:
    """The drift incidents of this version, as the drifted champion or as the challenger
    trained for one, newest first, each with its drift page."""
    incidents = DriftIncident.objects.filter(Q(champion=version) | Q(challenger=version)).order_by(
        "-opened_on", "-pk"
    )[:10]
    return [
        {
            "url": reverse("admin:mlops_driftincident_change", args=[incident.pk]),
            "incident": incident,
            "role": "champion" if incident.champion_id == version.pk else "challenger",
        }
        for incident in incidents
    ]


def history_section(version: ModelVersion) -> list[dict[str, Any]]:
    moves: list[ModelTransition] = list(transition_history(version))
    return [
        {
            "at": move.created_at,
            "from_status": move.from_status,
            "to_status": move.to_status,
            "actor": move.actor_label,
            "reason": move.reason,
            "evidence": evidence_pairs(move.evidence),
        }
        for move in moves
    ]
