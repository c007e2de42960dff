"""An experiment's results as its admin pages show them: tables, a chart per segment, walk-forwards."""

from __future__ import annotations

from typing import Any

from experiments.models import ModelExperiment
from experiments.stored_results import queue_experiment_results, stored_experiment_results
from mlops.admin.charts import bar_chart
from mlops.admin.review import backtest_section, format_metric, format_pct


def results_view(experiment: ModelExperiment, results: dict[str, Any] | None) -> dict[str, Any]:
    """The experiment's results as tables and a chart of the success metric per segment (the
    experimental version beside the champion that served the same points), and each version's
    walk-forward chart against its champion."""
    metric = experiment.success_metric
    label = ModelExperiment.Metric(metric).label
    rows, groups = [], []
    for segment, result in ((results or {}).get("segments") or {}).items():
        baseline = result.get("baseline") or {}
        experimental = result.get("experimental") or {}
        improvement = result.get("improvement_pct") or {}
        test = result.get("paired_test") or {}
        rows.append(
            {
                "segment": segment,
                "version": (result.get("version") or {}).get("version", ""),
                "source": result.get("source", ""),
                "reason": result.get("reason", ""),
                "n_points": result.get("n_points"),
                "metrics": [
                    {
                        "label": ModelExperiment.Metric(key).label,
                        "baseline": format_metric(key, baseline.get(key)),
                        "experimental": format_metric(key, experimental.get(key)),
                        "improvement": format_pct(improvement.get(key)),
                    }
                    for key in ("mae", "mape", "wape")
                ],
                "confidence": test.get("confidence"),
                "meets": bool(result.get("meets_success_criterion")),
            }
        )
        groups.append(
            (
                segment,
                [
                    ("Champion (baseline)", "champion", baseline.get(metric)),
                    ("Experimental version", "this-version", experimental.get(metric)),
                ],
            )
        )
    unit = " units" if metric == "mae" else "%"
    y_label = f"{label} ({'units per series-day' if metric == 'mae' else '%'})"
    return {
        "rows": rows,
        "chart": bar_chart(
            title=f"{label} per segment, on the same points",
            y_label=y_label,
            unit=unit,
            groups=groups,
        )
        if groups
        else None,
        "computed_at": (results or {}).get("computed_at"),
        "backtests": [
            {"version": version, "section": backtest_section(version)}
            for version in experiment.model_versions.order_by("segment", "pk")
        ],
    }


def page_results(experiment: ModelExperiment) -> tuple[dict[str, Any], str]:
    """The results a page shows and their state: the decision's for a completed experiment
    ("final"), else what a worker last computed, queueing a computation when they are missing
    or out of date (the page never computes them)."""
    if experiment.status == ModelExperiment.Status.COMPLETED and experiment.results:
        return experiment.results, "final"
    stored = stored_experiment_results(experiment=experiment)
    if not stored.current:
        queue_experiment_results(experiment=experiment)
    return stored.body, stored.body["state"]
