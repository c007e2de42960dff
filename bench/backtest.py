"""Benchmark of the 90-day walk-forward backtest (13 weekly windows, 7-day horizon, XGBoost refit
at every cutoff) against mlforecast's `cross_validation` on the same generated sales.

Both paths get the same long frame, the same XGBoost settings (bench/common.py's), lags
(1, 7, 14, 28), rolling means and standard deviations over 7 and 28 days, calendar features,
promotion flag (known on the target days, as planned promotions) and store/department codes;
both refit on every day before each cutoff (an expanding window) and forecast the 7 days from it
recursively. The project path is `forecasting.backtesting.walk_forward` with interval
calibration off (mlforecast computes no intervals here). Accuracy is MAE and WAPE over exactly
the same points (every series, 91 days).

The project's walk-forward shares work between its refits (features built once, the first
fit's feature bins, two windows trained at once on half of the cores each; see
`forecasting.families.xgboost_family.XGBoostRefitSession`); every window is still refit from
scratch on its own days.

A third path goes further: `walk_forward(warm_start=WarmStart(...))`. Between full refits
(every `--refit-every` windows), each window keeps the first n - `--warm-rounds` trees of the
previous window's booster and fits `--warm-rounds` new ones on its own training days. It is
measured against the refit-each-window result. (Keeping trees for all 13 windows without full
refits cost about half a point more MAE at 1,000 series.)

Each path runs in its own Python process (no shared memory); peak memory is the growth of
resident memory over the process's size before the timed section. Wall-clock time is the
headline, CPU time (all threads) beside it.

Usage: .venv/bin/python bench/backtest.py --sizes 1000,10000
       .venv/bin/python bench/backtest.py --workers 1,2 [--sizes 1000]
The second times the platform's own weekly walk-forward of one version, its windows spread over
1, then 2 real Celery workers, from PostgreSQL (bench/fanout.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The OpenMP threads of XGBoost sleep instead of spinning while they wait (as in settings).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
if str(REPOSITORY_ROOT) not in sys.path:
    sys.path.insert(0, str(REPOSITORY_ROOT))

from bench.common import (  # noqa: E402
    PRODUCTS_PER_STORE,
    PeakMemory,
    child_result,
    mlforecast_input,
    mlforecast_model,
    xgboost_settings,
)

HORIZON = 7
BACKTEST_DAYS = 90


def cutoffs_of(frame) -> list:
    from forecasting.backtesting import weekly_cutoffs

    return weekly_cutoffs(frame["date"].max(), days=BACKTEST_DAYS, window=HORIZON)


def save_points(*, output_path: Path, stores, products, cutoffs, forecast) -> None:
    """Forecasts [n_series, windows * horizon] as a long frame: store, product, date, value."""
    import numpy as np
    import pandas as pd

    dates = np.concatenate(
        [pd.date_range(cutoff, periods=HORIZON, freq="D").values for cutoff in cutoffs]
    )
    n_series = len(stores)
    pd.DataFrame(
        {
            "store": np.repeat(np.asarray(stores, dtype=str), len(dates)),
            "product": np.repeat(np.asarray(products, dtype=str), len(dates)),
            "date": np.tile(dates, n_series),
            "value": np.asarray(forecast, dtype=np.float64).reshape(-1),
        }
    ).to_parquet(output_path)


# -- the paths, each run in a child process ------------------------------------------------------


def run_project(
    *,
    data_path: Path,
    output_path: Path,
    n_estimators: int,
    warm_start=None,
    hyperparameters: dict | None = None,
    **_,
) -> dict:
    """The project's walk-forward engine: panel, then refit and forecast at each cutoff
    (continuing earlier fits' trees with a `WarmStart`); the shared XGBoost settings unless
    `hyperparameters` are given."""
    import gc

    import numpy as np
    import pandas as pd

    from forecasting.backtesting import walk_forward
    from forecasting.panel import Panel

    frame = pd.read_parquet(data_path)
    cutoffs = cutoffs_of(frame)
    if hyperparameters is None:
        hyperparameters = xgboost_settings(n_estimators=n_estimators)
    hyperparameters = {"calibration_windows": 0, **hyperparameters}
    gc.collect()
    with PeakMemory() as memory:
        started, cpu_started = time.perf_counter(), time.process_time()
        panel = Panel.from_frame(frame)
        windows = walk_forward(
            algorithm="xgboost",
            hyperparameters=hyperparameters,
            panel=panel,
            cutoffs=cutoffs,
            horizon=HORIZON,
            warm_start=warm_start,
        )
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
    save_points(
        output_path=output_path,
        stores=panel.stores,
        products=panel.products,
        cutoffs=cutoffs,
        forecast=np.concatenate([window.forecast for window in windows], axis=1),
    )
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_memory_bytes": memory.growth_bytes,
    }


def run_project_warm(*, warm_rounds: int, refit_every: int, **arguments) -> dict:
    """The project's walk-forward with warm start: between full refits, each window keeps the
    previous window's first trees and fits `warm_rounds` new ones."""
    from forecasting.families.base import WarmStart

    return run_project(
        warm_start=WarmStart(rounds=warm_rounds, full_refit_every=refit_every), **arguments
    )


def run_project_default(**arguments) -> dict:
    """The project's walk-forward of its default XGBoost recipe (the family's own defaults)."""
    return run_project(hyperparameters={}, **arguments)


def run_mlforecast_plain(*, data_path: Path, output_path: Path, **_) -> dict:
    """The second reference: plain mlforecast with XGBoost's default settings (200 trees),
    lags 1/7/14/28, rolling means over 7 and 28 days of lags 1 and 7, day of week and month;
    sales alone (no promotion flag, no codes)."""
    import pandas as pd
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean
    from xgboost import XGBRegressor

    frame = pd.read_parquet(data_path)
    cutoffs = cutoffs_of(frame)
    prepared, series_id = mlforecast_input(frame)
    prepared = prepared[["unique_id", "ds", "y"]]
    keys = frame[["store", "product"]].assign(unique_id=series_id).drop_duplicates("unique_id")
    del frame
    forecaster = MLForecast(
        models={"xgboost": XGBRegressor(n_estimators=200, n_jobs=os.cpu_count())},
        freq="D",
        lags=[1, 7, 14, 28],
        lag_transforms={
            1: [RollingMean(7), RollingMean(28)],
            7: [RollingMean(7), RollingMean(28)],
        },
        date_features=["dayofweek", "month"],
    )
    return timed_cross_validation(
        forecaster, prepared=prepared, keys=keys, n_windows=len(cutoffs), output_path=output_path
    )


def run_mlforecast(*, data_path: Path, output_path: Path, n_estimators: int, **_) -> dict:
    """The reference: mlforecast's cross_validation with XGBRegressor and the same features."""
    import pandas as pd

    frame = pd.read_parquet(data_path)
    cutoffs = cutoffs_of(frame)
    # Input shaping mlforecast needs (series id, codes) is done before the clock starts.
    prepared, series_id = mlforecast_input(frame)
    keys = frame[["store", "product"]].assign(unique_id=series_id).drop_duplicates("unique_id")
    del frame

    return timed_cross_validation(
        mlforecast_model(n_estimators=n_estimators),
        prepared=prepared,
        keys=keys,
        n_windows=len(cutoffs),
        output_path=output_path,
        static_features=["department_code", "store_code"],
    )


def timed_cross_validation(
    forecaster, *, prepared, keys, n_windows: int, output_path: Path, **options
) -> dict:
    """mlforecast's refitting cross_validation over `n_windows` weekly windows, timed, with its
    peak memory; its forecasts written to `output_path` by store and product."""
    import gc

    import numpy as np
    import pandas as pd

    gc.collect()
    with PeakMemory() as memory:
        started, cpu_started = time.perf_counter(), time.process_time()
        validation = forecaster.cross_validation(
            prepared, n_windows=n_windows, h=HORIZON, step_size=HORIZON, refit=True, **options
        )
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
    result = validation.merge(keys, on="unique_id")
    pd.DataFrame(
        {
            "store": result["store"].astype(str),
            "product": result["product"].astype(str),
            "date": result["ds"],
            "value": result["xgboost"].astype(np.float64),
        }
    ).to_parquet(output_path)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_memory_bytes": memory.growth_bytes,
    }


PATHS = {
    "project": run_project,
    "project_warm": run_project_warm,
    "mlforecast": run_mlforecast,
    "default": run_project_default,
    "mlforecast_plain": run_mlforecast_plain,
}


# -- the parent: data, children, report ----------------------------------------------------------


def prepare_data(
    *,
    n_series: int,
    days: int,
    seed: int,
    folder: Path,
    department_shares: tuple[float, ...] | None = None,
    noise_shape: float | None = None,
) -> Path:
    from forecasting.synthetic import NOISE_SHAPE, generate_sales

    stores = max(n_series // PRODUCTS_PER_STORE, 1)
    sales = generate_sales(
        stores=stores,
        products=PRODUCTS_PER_STORE,
        days=days,
        seed=seed,
        department_shares=department_shares,
        noise_shape=NOISE_SHAPE if noise_shape is None else noise_shape,
    )
    sales = sales[["date", "store", "product", "department", "quantity", "on_promotion"]]
    path = folder / f"sales_{n_series}.parquet"
    sales.assign(quantity=sales["quantity"].astype("float64")).to_parquet(path)
    return path


def run_child(*, path_name: str, data_path: Path, output_path: Path, arguments) -> dict:
    return child_result(
        script=__file__,
        path_name=path_name,
        options=[
            "--data",
            str(data_path),
            "--output",
            str(output_path),
            "--n-estimators",
            str(arguments.n_estimators),
            "--warm-rounds",
            str(arguments.warm_rounds),
            "--refit-every",
            str(arguments.refit_every),
        ],
    )


def accuracy(*, data_path: Path, forecast_paths: dict[str, Path]) -> dict[str, dict[str, float]]:
    """MAE and WAPE of each path over the points every path forecast (all of them, checked)."""
    import pandas as pd

    from forecasting.metrics import bias, mae, wape

    actual = pd.read_parquet(data_path, columns=["date", "store", "product", "quantity"])
    actual = actual.assign(store=actual["store"].astype(str), product=actual["product"].astype(str))
    joined = None
    for name, path in forecast_paths.items():
        frame = pd.read_parquet(path).rename(columns={"value": name})
        frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
        joined = frame if joined is None else joined.merge(frame, on=["store", "product", "date"])
    sizes = {name: len(pd.read_parquet(path)) for name, path in forecast_paths.items()}
    if len(set(sizes.values())) != 1 or len(joined) != next(iter(sizes.values())):
        raise RuntimeError(f"the paths forecast different points: {sizes}, {len(joined)} shared")
    actual["date"] = pd.to_datetime(actual["date"]).astype("datetime64[ns]")
    joined = joined.merge(actual, on=["store", "product", "date"])
    truth = joined["quantity"].to_numpy(float)
    return {
        name: {
            "mae": mae(truth, joined[name].to_numpy(float)),
            "wape": wape(truth, joined[name].to_numpy(float)),
            "bias": bias(truth, joined[name].to_numpy(float)),
            "points": len(joined),
        }
        for name in forecast_paths
    }


def main() -> None:
    arguments = parse_arguments()
    if arguments.child:
        result = PATHS[arguments.child](
            data_path=arguments.data,
            output_path=arguments.output,
            n_estimators=arguments.n_estimators,
            warm_rounds=arguments.warm_rounds,
            refit_every=arguments.refit_every,
        )
        print(json.dumps(result))
        return
    if arguments.workers:
        run_over_workers(arguments)
        return

    paths = arguments.paths.split(",")
    print(
        f"walk-forward benchmark: {BACKTEST_DAYS // HORIZON + 1} weekly windows, {HORIZON}-day "
        f"horizon, XGBoost hist {arguments.n_estimators} trees (warm start: "
        f"{arguments.warm_rounds} refitted per window, all every {arguments.refit_every}), "
        f"{os.cpu_count()} CPU threads, "
        f"{arguments.days} days of sales",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="backtest-bench-") as folder:
        for n_series in (int(size) for size in arguments.sizes.split(",")):
            data_path = prepare_data(
                n_series=n_series,
                days=arguments.days,
                seed=arguments.seed,
                folder=Path(folder),
                department_shares=None
                if arguments.department_shares is None
                else tuple(float(share) for share in arguments.department_shares.split(",")),
                noise_shape=arguments.noise_shape,
            )
            runs, outputs = run_paths(
                arguments, paths=paths, n_series=n_series, folder=Path(folder), data_path=data_path
            )
            scores = accuracy(data_path=data_path, forecast_paths=outputs)
            print_comparisons(n_series=n_series, paths=paths, runs=runs, scores=scores)


def run_over_workers(arguments: argparse.Namespace) -> None:
    """The platform's walk-forward on Celery workers (bench/fanout.py), instead of the paths."""
    sizes = arguments.sizes if arguments.sizes_given else "1000"
    command = [sys.executable, str(Path(__file__).with_name("fanout.py")), "--sizes", sizes]
    command += ["--workers", arguments.workers, "--days", str(arguments.days)]
    command += ["--n-estimators", str(arguments.n_estimators), "--seed", str(arguments.seed)]
    subprocess.run(command, check=True)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", help="series counts, comma-separated (default 1000,10000)")
    parser.add_argument(
        "--workers",
        help="worker counts (e.g. 1,2): time the platform's walk-forward spread over that many "
        "Celery workers instead (bench/fanout.py; default size 1000)",
    )
    parser.add_argument("--days", type=int, default=730, help="days of sales per series")
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument(
        "--warm-rounds", type=int, default=20, help="trees refitted per window when warm-starting"
    )
    parser.add_argument(
        "--refit-every", type=int, default=4, help="windows between full refits when warm-starting"
    )
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument(
        "--department-shares",
        help="the generator's shares of Grocery, Apparel, Electronics products, e.g. 0.2,0.3,0.5",
    )
    parser.add_argument("--noise-shape", type=float, help="the generator's over-dispersion")
    parser.add_argument(
        "--paths", default="project,mlforecast,project_warm", help="paths to run, in order"
    )
    parser.add_argument("--child", choices=sorted(PATHS), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    arguments.sizes_given = arguments.sizes is not None
    arguments.sizes = arguments.sizes or "1000,10000"
    return arguments


def run_paths(
    arguments: argparse.Namespace,
    *,
    paths: list[str],
    n_series: int,
    folder: Path,
    data_path: Path,
) -> tuple[dict[str, dict], dict[str, Path]]:
    """Run each path once, printing its time and memory; returns the runs and forecast files."""
    mebibyte = 2**20
    runs, outputs = {}, {}
    for path_name in paths:
        outputs[path_name] = folder / f"forecast_{path_name}_{n_series}.parquet"
        runs[path_name] = run_child(
            path_name=path_name,
            data_path=data_path,
            output_path=outputs[path_name],
            arguments=arguments,
        )
        run = runs[path_name]
        print(
            f"  {n_series:>6} series  {path_name:<16} {run['seconds']:>9.1f} s wall "
            f"{run['cpu_seconds']:>9.1f} s cpu {run['peak_memory_bytes'] / mebibyte:>8.0f}"
            f" MiB peak",
            flush=True,
        )
    return runs, outputs


def print_comparisons(
    *, n_series: int, paths: list[str], runs: dict[str, dict], scores: dict[str, dict]
) -> None:
    """Each path's accuracy, then the comparisons between the paths that ran."""
    for name in paths:
        print(
            f"  {n_series:>6} series  {name:<16} MAE {scores[name]['mae']:.4f}  "
            f"WAPE {scores[name]['wape']:.2f}%  bias {scores[name]['bias']:+.2f}%  "
            f"({scores[name]['points']:,} points)"
        )
    if {"project", "mlforecast"} <= set(paths):
        ours, reference = runs["project"], runs["mlforecast"]
        print(
            f"  {n_series:>6} series  project/mlforecast: time "
            f"{ours['seconds'] / reference['seconds']:.2f}, cpu "
            f"{ours['cpu_seconds'] / reference['cpu_seconds']:.2f}, peak memory "
            f"{ours['peak_memory_bytes'] / max(reference['peak_memory_bytes'], 1):.2f}, "
            f"MAE {scores['project']['mae'] / scores['mlforecast']['mae'] - 1:+.2%}, "
            f"WAPE {scores['project']['wape'] / scores['mlforecast']['wape'] - 1:+.2%}"
        )
    if {"default", "mlforecast_plain"} <= set(paths):
        ours, plain = scores["default"]["wape"], scores["mlforecast_plain"]["wape"]
        change = (ours / plain - 1) * 100
        print(
            f"  {n_series:>6} series  default recipe vs plain mlforecast: WAPE "
            f"{abs(change):.1f}% {'worse' if change > 0 else 'better'}, bias "
            f"{scores['default']['bias']:+.2f}% vs "
            f"{scores['mlforecast_plain']['bias']:+.2f}%",
            flush=True,
        )
    if {"project", "project_warm"} <= set(paths):
        warm, refit = runs["project_warm"], runs["project"]
        print(
            f"  {n_series:>6} series  warm start/refit: time "
            f"{warm['seconds'] / refit['seconds']:.2f}, cpu "
            f"{warm['cpu_seconds'] / refit['cpu_seconds']:.2f}, MAE "
            f"{scores['project_warm']['mae'] / scores['project']['mae'] - 1:+.2%}, "
            f"WAPE {scores['project_warm']['wape'] / scores['project']['wape'] - 1:+.2%}",
            flush=True,
        )


if __name__ == "__main__":
    main()
