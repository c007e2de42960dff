"""Benchmark of the retrain path (features, XGBoost fit, 7-day forecast) against mlforecast.

Both paths get the same generated sales (a long pandas frame), the same XGBoost settings, lags,
rolling statistics, calendar features, promotion flag and store/department codes, train on the
same rows (every day after the 28-day warm-up) and forecast the 7 days after the last training
day recursively. Each path runs in its own fresh Python process, so that neither inherits the
other's memory; peak memory is the growth of resident memory over the process's size before
the timed section (imports and input already loaded), sampled every few milliseconds.
Wall-clock time is the headline; CPU time (all threads) is printed beside it because on a
shared machine other processes stretch wall-clock time, and each path runs `--repeats` times,
alternating, with its fastest run (and smallest memory peak) reported.

Usage: .venv/bin/python bench/retrain.py --sizes 1000,10000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
if str(REPOSITORY_ROOT) not in sys.path:
    sys.path.insert(0, str(REPOSITORY_ROOT))

HORIZON = 7
PRODUCTS_PER_STORE = 100
LAGS = [1, 7, 14, 28]


def xgboost_settings(*, n_estimators: int) -> dict:
    """The XGBoost settings both paths use."""
    return {
        "n_estimators": n_estimators,
        "max_depth": 8,
        "learning_rate": 0.1,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "min_child_weight": 10.0,
        "max_bin": 256,
        "seed": 0,
    }


class PeakMemory:
    """Samples the process's resident memory in a thread and keeps the highest value."""

    def __init__(self, *, interval_seconds: float = 0.005) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval = interval_seconds
        self._stop = threading.Event()
        self.baseline = self._process.memory_info().rss
        self.peak = self.baseline
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(self._interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def growth_bytes(self) -> int:
        return self.peak - self.baseline


# -- the two paths, each run in a child process ------------------------------------------------


def run_project(*, data_path: Path, output_path: Path, n_estimators: int) -> dict:
    """Our retrain path: long frame -> Panel -> XGBoost fit -> 7-day forecast."""
    import gc

    import pandas as pd

    from forecasting.families.xgboost_family import XGBoostModel
    from forecasting.panel import Panel

    frame = pd.read_parquet(data_path)
    cutoff = frame.loc[frame["quantity"].isna(), "date"].min()
    # Intervals are off here: mlforecast computes none in this comparison.
    model = XGBoostModel(calibration_windows=0, **xgboost_settings(n_estimators=n_estimators))
    gc.collect()
    with PeakMemory() as memory:
        started, cpu_started = time.perf_counter(), time.process_time()
        panel = Panel.from_frame(frame)
        model.fit(panel.until(cutoff))
        forecasts = model.predict(panel, cutoff, horizon=HORIZON)
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
    forecasts.to_frame().to_parquet(output_path)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_memory_bytes": memory.growth_bytes,
    }


def run_mlforecast(*, data_path: Path, output_path: Path, n_estimators: int) -> dict:
    """The reference: mlforecast with XGBRegressor and the same features."""
    import gc

    import numpy as np
    import pandas as pd
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean, RollingStd
    from xgboost import XGBRegressor

    frame = pd.read_parquet(data_path)
    # Input shaping mlforecast needs (series id, static codes) is done before the clock starts.
    series_id = frame["store"].cat.codes.astype(np.int64) * PRODUCTS_PER_STORE + frame[
        "product"
    ].cat.codes.astype(np.int64)
    prepared = pd.DataFrame(
        {
            "unique_id": series_id,
            "ds": frame["date"],
            "y": frame["quantity"].astype(np.float32),
            "on_promotion": frame["on_promotion"].astype(np.float32),
            "department_code": frame["department"].cat.codes.astype(np.float32),
            "store_code": frame["store"].cat.codes.astype(np.float32),
        }
    )
    future = prepared["y"].isna()
    training = prepared[~future].reset_index(drop=True)
    future_promotions = prepared.loc[future, ["unique_id", "ds", "on_promotion"]]
    keys = frame.loc[~future, ["store", "product"]].assign(unique_id=series_id[~future])
    keys = keys.drop_duplicates("unique_id")
    del frame, prepared

    settings = xgboost_settings(n_estimators=n_estimators)
    regressor = XGBRegressor(
        n_estimators=settings["n_estimators"],
        max_depth=settings["max_depth"],
        learning_rate=settings["learning_rate"],
        subsample=settings["subsample"],
        colsample_bytree=settings["colsample_bytree"],
        min_child_weight=settings["min_child_weight"],
        max_bin=settings["max_bin"],
        random_state=settings["seed"],
        tree_method="hist",
        n_jobs=os.cpu_count(),
    )

    def week_of_year(dates: pd.DatetimeIndex) -> np.ndarray:
        return dates.isocalendar().week.to_numpy()

    forecaster = MLForecast(
        models={"xgboost": regressor},
        freq="D",
        lags=LAGS,
        lag_transforms={1: [RollingMean(7), RollingMean(28), RollingStd(7), RollingStd(28)]},
        date_features=["day_of_week", "day", "month", week_of_year],
        num_threads=os.cpu_count(),
    )
    gc.collect()
    with PeakMemory() as memory:
        started, cpu_started = time.perf_counter(), time.process_time()
        forecaster.fit(training, static_features=["department_code", "store_code"])
        predicted = forecaster.predict(h=HORIZON, X_df=future_promotions)
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
    result = predicted.merge(keys, on="unique_id")
    result = result.rename(columns={"ds": "target_date", "xgboost": "value"})
    result[["store", "product", "target_date", "value"]].to_parquet(output_path)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_memory_bytes": memory.growth_bytes,
    }


PATHS = {"project": run_project, "mlforecast": run_mlforecast}


# -- the parent: data, children, report --------------------------------------------------------


def prepare_data(*, n_series: int, days: int, seed: int, folder: Path) -> tuple[Path, object]:
    """Generated sales with the last HORIZON days' quantities hidden (their promotions stay
    known, as planned promotions); returns the file and the hidden actuals."""
    import numpy as np

    from forecasting.synthetic import generate_sales

    stores = max(n_series // PRODUCTS_PER_STORE, 1)
    sales = generate_sales(
        stores=stores, products=PRODUCTS_PER_STORE, days=days + HORIZON, seed=seed
    )
    sales = sales[["date", "store", "product", "department", "quantity", "on_promotion"]]
    cutoff = sales["date"].max() - np.timedelta64(HORIZON - 1, "D")
    hidden = sales["date"] >= cutoff
    actuals = sales.loc[hidden, ["store", "product", "date", "quantity"]].copy()
    sales = sales.assign(quantity=sales["quantity"].astype("float64"))
    sales.loc[hidden, "quantity"] = np.nan
    path = folder / f"sales_{n_series}.parquet"
    sales.to_parquet(path)
    return path, actuals


def run_child(*, path_name: str, data_path: Path, output_path: Path, n_estimators: int) -> dict:
    completed = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            path_name,
            "--data",
            str(data_path),
            "--output",
            str(output_path),
            "--n-estimators",
            str(n_estimators),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPOSITORY_ROOT,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{path_name} run failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def forecast_wape(*, forecast_path: Path, actuals) -> float:
    import pandas as pd

    from forecasting.metrics import wape

    forecasts = pd.read_parquet(forecast_path)
    forecasts["store"] = forecasts["store"].astype(str)
    forecasts["product"] = forecasts["product"].astype(str)
    truth = actuals.assign(
        store=actuals["store"].astype(str),
        product=actuals["product"].astype(str),
        target_date=pd.to_datetime(actuals["date"]).astype("datetime64[ns]"),
    )
    forecasts["target_date"] = pd.to_datetime(forecasts["target_date"]).astype("datetime64[ns]")
    joined = truth.merge(forecasts, on=["store", "product", "target_date"], how="left")
    if joined["value"].isna().any():
        raise RuntimeError("a forecast is missing for some series and day")
    return wape(joined["quantity"].to_numpy(float), joined["value"].to_numpy(float))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="series counts, comma-separated")
    parser.add_argument("--days", type=int, default=730, help="training days per series")
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument(
        "--repeats", type=int, default=2, help="runs of each path; the fastest is reported"
    )
    parser.add_argument("--child", choices=sorted(PATHS), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()

    if arguments.child:
        result = PATHS[arguments.child](
            data_path=arguments.data,
            output_path=arguments.output,
            n_estimators=arguments.n_estimators,
        )
        print(json.dumps(result))
        return

    print(
        f"retrain benchmark: XGBoost hist, {arguments.n_estimators} trees, "
        f"{os.cpu_count()} CPU threads, {arguments.days} training days, {HORIZON}-day forecast, "
        f"best of {arguments.repeats} runs per path"
    )
    header = (
        f"{'series':>7} {'project s':>10} {'mlforecast s':>13} {'time ratio':>11} "
        f"{'cpu ratio':>10} {'project MiB':>12} {'mlforecast MiB':>15} {'memory ratio':>13} "
        f"{'project WAPE':>13} {'mlforecast WAPE':>16} {'WAPE rel diff':>14}"
    )
    print(header)
    with tempfile.TemporaryDirectory(prefix="retrain-bench-") as folder:
        for n_series in (int(size) for size in arguments.sizes.split(",")):
            data_path, actuals = prepare_data(
                n_series=n_series, days=arguments.days, seed=arguments.seed, folder=Path(folder)
            )
            results, wapes = {}, {}
            for repeat in range(arguments.repeats):
                # Alternate which path goes first, so that a burst of load from other
                # processes does not always land on the same one; keep each path's fastest run.
                order = ("project", "mlforecast") if repeat % 2 == 0 else ("mlforecast", "project")
                for path_name in order:
                    output_path = Path(folder) / f"forecast_{path_name}_{n_series}.parquet"
                    run = run_child(
                        path_name=path_name,
                        data_path=data_path,
                        output_path=output_path,
                        n_estimators=arguments.n_estimators,
                    )
                    best = results.get(path_name)
                    results[path_name] = (
                        run if best is None else {name: min(best[name], run[name]) for name in run}
                    )
                    wapes[path_name] = forecast_wape(forecast_path=output_path, actuals=actuals)
            ours, reference = results["project"], results["mlforecast"]
            mebibyte = 2**20
            print(
                f"{n_series:>7} {ours['seconds']:>10.2f} {reference['seconds']:>13.2f} "
                f"{ours['seconds'] / reference['seconds']:>11.2f} "
                f"{ours['cpu_seconds'] / reference['cpu_seconds']:>10.2f} "
                f"{ours['peak_memory_bytes'] / mebibyte:>12.0f} "
                f"{reference['peak_memory_bytes'] / mebibyte:>15.0f} "
                f"{ours['peak_memory_bytes'] / max(reference['peak_memory_bytes'], 1):>13.2f} "
                f"{wapes['project']:>13.2f} {wapes['mlforecast']:>16.2f} "
                f"{(wapes['project'] - wapes['mlforecast']) / wapes['mlforecast']:>+14.2%}",
                flush=True,
            )


if __name__ == "__main__":
    main()
