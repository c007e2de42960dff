"""Benchmark: the walk-forward of one XGBoost recipe with the promotion calendar against the same
recipe without it, on generated sales (the generator's promotion effects as they are), scored on
the same points, overall and per department.

- without the calendar: the models train on the sales' own promotion flags and forecast with no
  promotion on or after each cutoff (the daily forecast of a tenant without a calendar);
- with the calendar: `forecasting.synthetic.promotion_calendar_of`'s calendar (20% of the
  promotions entered 1-3 days ahead, 10% never entered, 5% extra plans cancelled), seen
  point-in-time (`Panel.as_seen_at`) in training and forecasting.

Usage: .venv/bin/python bench/known_inputs.py --series 1000 --windows 4 [--seeds 7,11]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
if str(REPOSITORY_ROOT) not in sys.path:
    sys.path.insert(0, str(REPOSITORY_ROOT))

PRODUCTS_PER_STORE = 50


def calendar_panel(*, series: int, days: int, seed: int):
    """The generated panel (sales flags) and the same panel carrying its calendar."""
    from forecasting.known_inputs import calendar_rows, promotion_known_from
    from forecasting.panel import Panel
    from forecasting.synthetic import generate_sales, promotion_calendar_of

    stores = max(series // PRODUCTS_PER_STORE, 1)
    sales = generate_sales(stores=stores, products=PRODUCTS_PER_STORE, days=days, seed=seed)
    panel = Panel.from_frame(sales)
    calendar = promotion_calendar_of(sales, seed=seed)
    known_from = promotion_known_from(panel=panel, rows=calendar_rows(calendar))
    return panel, panel.with_promotion_calendar(known_from)


def scores(windows) -> dict[str, dict[str, float]]:
    """WAPE, bias and MAE over all windows' points, overall and per department."""
    import numpy as np

    from forecasting.metrics import bias, interval_coverage, mae, wape

    actual = np.concatenate([w.actual for w in windows], axis=1)
    forecast = np.concatenate([w.forecast for w in windows], axis=1)
    lower = np.concatenate([w.lower for w in windows], axis=1)
    upper = np.concatenate([w.upper for w in windows], axis=1)
    departments = windows[0].departments
    groups = {"all": np.ones(len(departments), dtype=bool)}
    groups.update({str(name): departments == name for name in np.unique(departments)})
    return {
        name: {
            "wape": wape(actual[rows], forecast[rows]),
            "bias": bias(actual[rows], forecast[rows]),
            "mae": mae(actual[rows], forecast[rows]),
            "interval_coverage": interval_coverage(
                actual[rows], lower=lower[rows], upper=upper[rows]
            ),
        }
        for name, rows in groups.items()
    }


def run(*, series: int, days: int, seed: int, windows: int, calibrate: bool) -> dict:
    from forecasting.backtesting import walk_forward, weekly_cutoffs

    plain, with_calendar = calendar_panel(series=series, days=days, seed=seed)
    cutoffs = weekly_cutoffs(plain.last_day, days=7 * windows)
    hyperparameters = {"calibration_windows": 4 if calibrate else 0}
    results = {}
    for name, panel in (("without calendar", plain), ("with calendar", with_calendar)):
        started = time.perf_counter()
        results[name] = scores(
            walk_forward(
                algorithm="xgboost",
                hyperparameters=hyperparameters,
                panel=panel,
                cutoffs=cutoffs,
                promotions_known=False,
            )
        )
        results[name]["seconds"] = time.perf_counter() - started
    return results


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--windows", type=int, default=4, help="weekly walk-forward windows")
    parser.add_argument("--seeds", default="2024", help="generator seeds, comma-separated")
    parser.add_argument("--calibrate", action="store_true", help="calibrate intervals too")
    arguments = parser.parse_args()
    for seed in (int(value) for value in arguments.seeds.split(",")):
        results = run(
            series=arguments.series,
            days=arguments.days,
            seed=seed,
            windows=arguments.windows,
            calibrate=arguments.calibrate,
        )
        without, with_calendar = results["without calendar"], results["with calendar"]
        print(
            f"seed {seed}: {arguments.series} series, {arguments.windows} weekly windows, "
            f"XGBoost default recipe ({without['seconds']:.0f} s / "
            f"{with_calendar['seconds']:.0f} s)"
        )
        for group in [name for name in without if name != "seconds"]:
            before, after = without[group], with_calendar[group]
            change = (before["wape"] - after["wape"]) / before["wape"] * 100
            print(
                f"  {group:<12} WAPE {_pct(before['wape'])} -> {_pct(after['wape'])} "
                f"({abs(change):.1f}% {'better' if change >= 0 else 'worse'}); bias "
                f"{_pct(before['bias'])} -> {_pct(after['bias'])}; interval coverage "
                f"{_pct(None if before['interval_coverage'] is None else before['interval_coverage'] * 100)}"
                f" -> {_pct(None if after['interval_coverage'] is None else after['interval_coverage'] * 100)}",
                flush=True,
            )


if __name__ == "__main__":
    main()
