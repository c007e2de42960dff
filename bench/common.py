"""What the benchmarks share: XGBoost settings, memory sampling, mlforecast's model and input, and
running one path in a fresh Python process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]

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


def mlforecast_model(*, n_estimators: int):
    """mlforecast with XGBRegressor (the shared settings) and the project's features."""
    import numpy as np
    import pandas as pd
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean, RollingStd
    from xgboost import XGBRegressor

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
    return forecaster


def mlforecast_input(frame):
    """mlforecast's long input (unique_id, ds, y, exogenous and static codes) from sales rows
    with store, product, department, date, quantity, on_promotion; returns it and the ids."""
    import numpy as np
    import pandas as pd

    store = frame["store"].astype("category")
    product = frame["product"].astype("category")
    series_id = store.cat.codes.astype(np.int64) * len(product.cat.categories) + (
        product.cat.codes.astype(np.int64)
    )
    prepared = pd.DataFrame(
        {
            "unique_id": series_id,
            "ds": frame["date"],
            "y": frame["quantity"].astype(np.float32),
            "on_promotion": frame["on_promotion"].astype(np.float32),
            "department_code": frame["department"].astype("category").cat.codes.astype(np.float32),
            "store_code": store.cat.codes.astype(np.float32),
        }
    )
    return prepared, series_id


def child_result(*, script: str, path_name: str, options: list[str]) -> dict:
    """Run one benchmark path in a fresh Python process (`script --child PATH ...options`) and
    return the JSON it prints last; raises RuntimeError with its stderr when it fails."""
    completed = subprocess.run(
        [sys.executable, script, "--child", path_name, *options],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPOSITORY_ROOT,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{path_name} run failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])
