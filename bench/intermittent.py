"""Benchmark: the intermittent family (statsforecast's SBA / TSB / ADIDA / IMAPA, one per demand
class) against the default XGBoost recipe on the intermittent and lumpy series only, in the same
weekly walk-forward on generated sales, scored on the same points with WAPE and MASE.

Both recipes are fitted on every series (XGBoost is global: it learns from the fast movers too)
with the promotion flags seen as the daily forecast sees them without a calendar; the series
are classed from their history before the first cutoff (Syntetos-Boylan, last 182 days).

MASE here follows DESIGN.md (per series, MAE over its in-sample 7-day seasonal-naive MAE,
pooled as the mean over series).

Usage: .venv/bin/python bench/intermittent.py --series 1000 --windows 4 [--seeds 2024,7]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
if str(REPOSITORY_ROOT) not in sys.path:
    sys.path.insert(0, str(REPOSITORY_ROOT))

PRODUCTS_PER_STORE = 50
RECIPES = {"xgboost": {}, "intermittent": {}}


def seasonal_naive_scale(history) -> np.ndarray:  # noqa: F821 (numpy imported lazily)
    """Per series: the in-sample mean absolute 7-day seasonal-naive error of its history."""
    import numpy as np

    difference = history[:, 7:] - history[:, :-7]
    with np.errstate(invalid="ignore"):
        return np.nanmean(np.abs(difference), axis=1)


def run(*, series: int, days: int, seed: int, windows: int) -> dict:
    import numpy as np

    from forecasting.backtesting import walk_forward, weekly_cutoffs
    from forecasting.demand_classes import SPARSE_CLASSES, classify
    from forecasting.metrics import wape
    from forecasting.panel import Panel
    from forecasting.synthetic import generate_sales

    sales = generate_sales(
        stores=max(series // PRODUCTS_PER_STORE, 1),
        products=PRODUCTS_PER_STORE,
        days=days,
        seed=seed,
    )
    panel = Panel.from_frame(sales)
    cutoffs = weekly_cutoffs(panel.last_day, days=7 * windows)
    history = panel.until(cutoffs[0])
    classes = classify(history.quantity).classes
    sparse = np.isin(classes, SPARSE_CLASSES)
    scale = seasonal_naive_scale(history.quantity)
    results = {
        "series": int(sparse.sum()),
        "classes": {
            str(k): int(v) for k, v in zip(*np.unique(classes, return_counts=True), strict=True)
        },
    }
    for algorithm, hyperparameters in RECIPES.items():
        stacked = walk_forward(
            algorithm=algorithm,
            hyperparameters={"calibration_windows": 0, **hyperparameters},
            panel=panel,
            cutoffs=cutoffs,
            promotions_known=False,
        )
        actual = np.concatenate([w.actual for w in stacked], axis=1)[sparse]
        forecast = np.concatenate([w.forecast for w in stacked], axis=1)[sparse]
        usable = np.isfinite(scale[sparse]) & (scale[sparse] > 0)
        per_series = np.nanmean(np.abs(actual - forecast), axis=1)[usable] / scale[sparse][usable]
        results[algorithm] = {
            "wape": wape(actual, forecast),
            "mase": float(np.mean(per_series)),
            "points": int((~np.isnan(actual) & ~np.isnan(forecast)).sum()),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--windows", type=int, default=4)
    parser.add_argument("--seeds", default="2024")
    arguments = parser.parse_args()
    for seed in (int(value) for value in arguments.seeds.split(",")):
        results = run(
            series=arguments.series, days=arguments.days, seed=seed, windows=arguments.windows
        )
        print(
            f"seed {seed}: {results['series']} intermittent or lumpy series of "
            f"{arguments.series} (classes {results['classes']}), {arguments.windows} windows"
        )
        for algorithm in RECIPES:
            numbers = results[algorithm]
            print(
                f"  {algorithm:<13} WAPE {numbers['wape']:.2f}%  MASE {numbers['mase']:.3f}  "
                f"({numbers['points']:,} points)"
            )
        ours, theirs = results["intermittent"], results["xgboost"]
        for metric in ("wape", "mase"):
            change = (theirs[metric] - ours[metric]) / theirs[metric] * 100
            print(
                f"  intermittent vs xgboost {metric.upper()}: {abs(change):.1f}% "
                f"{'better' if change >= 0 else 'worse'}",
                flush=True,
            )


if __name__ == "__main__":
    main()
