"""Where the XGBoost recipe's bias comes from: a weekly walk-forward on generated sales, its bias
by horizon step (recursion compounds over the steps, the first step is not recursive), by
demand class (zero-inflated slow movers against the rest), on promotion days, and with the
target days' promotions known or not, for the default recipe and variants of it.

Usage: .venv/bin/python bench/bias.py --series 500 --windows 4 \
    --variants '{"default": {}, "poisson": {"objective": "count:poisson"}}' [--seeds 2024,7]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
if str(REPOSITORY_ROOT) not in sys.path:
    sys.path.insert(0, str(REPOSITORY_ROOT))

PRODUCTS_PER_STORE = 50


def diagnose(*, panel, cutoffs, hyperparameters: dict, promotions_known: bool) -> dict:
    import numpy as np

    from forecasting.backtesting import walk_forward
    from forecasting.demand_classes import SPARSE_CLASSES, classify
    from forecasting.metrics import bias, wape

    started = time.perf_counter()
    windows = walk_forward(
        algorithm="xgboost",
        hyperparameters={"calibration_windows": 0, **hyperparameters},
        panel=panel,
        cutoffs=cutoffs,
        promotions_known=promotions_known,
    )
    actual = np.stack([w.actual for w in windows])  # [window, series, step]
    forecast = np.stack([w.forecast for w in windows])
    promoted = np.stack(
        [panel.on_promotion[:, panel.day_position(c) : panel.day_position(c) + 7] for c in cutoffs]
    ).astype(bool)
    sparse = np.isin(classify(panel.until(cutoffs[0]).quantity).classes, SPARSE_CLASSES)
    return {
        "wape": wape(actual, forecast),
        "bias": bias(actual, forecast),
        "bias_by_step": [bias(actual[:, :, s], forecast[:, :, s]) for s in range(7)],
        "bias_sparse": bias(actual[:, sparse], forecast[:, sparse]),
        "bias_other": bias(actual[:, ~sparse], forecast[:, ~sparse]),
        "bias_promotion_days": bias(actual[promoted], forecast[promoted]),
        "bias_other_days": bias(actual[~promoted], forecast[~promoted]),
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=500)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--windows", type=int, default=4)
    parser.add_argument("--seeds", default="2024")
    parser.add_argument("--variants", default='{"default": {}}', help="name -> hyperparameters")
    parser.add_argument(
        "--promotions",
        choices=["known", "unknown", "both"],
        default="known",
        help="target days' promotion flags: as they were (a perfect calendar), none, or both",
    )
    arguments = parser.parse_args()

    from forecasting.backtesting import weekly_cutoffs
    from forecasting.panel import Panel
    from forecasting.synthetic import generate_sales

    variants = json.loads(arguments.variants)
    settings = {"known": [True], "unknown": [False], "both": [True, False]}[arguments.promotions]
    for seed in (int(value) for value in arguments.seeds.split(",")):
        sales = generate_sales(
            stores=max(arguments.series // PRODUCTS_PER_STORE, 1),
            products=PRODUCTS_PER_STORE,
            days=arguments.days,
            seed=seed,
        )
        panel = Panel.from_frame(sales)
        cutoffs = weekly_cutoffs(panel.last_day, days=7 * arguments.windows)
        for name, hyperparameters in variants.items():
            for known in settings:
                result = diagnose(
                    panel=panel,
                    cutoffs=cutoffs,
                    hyperparameters=hyperparameters,
                    promotions_known=known,
                )
                steps = " ".join(f"{value:+.1f}" for value in result["bias_by_step"])
                print(
                    f"seed {seed} {name:<14} promotions {'known  ' if known else 'unknown'} "
                    f"WAPE {result['wape']:.2f}% bias {result['bias']:+.2f}% | by step {steps} | "
                    f"slow movers {result['bias_sparse']:+.1f}% others {result['bias_other']:+.1f}%"
                    f" | promotion days {result['bias_promotion_days']:+.1f}% others "
                    f"{result['bias_other_days']:+.1f}% ({result['seconds']:.0f} s)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
