"""Memory of the walk-forward per 1,000 series, part by part, and the largest tenant one worker
holds.

For each size, generated sales (730 days a series) go through the walk-forward's parts in a
fresh Python process, and after each part it prints what the process holds more than before it
(resident memory, after handing freed heap back to the OS, so that what the allocator kept for
later is not counted as held):

- the panel (`Panel.from_frame`: quantities and promotion flags, series x days), with the peak
  while it is built from the long frame;
- the features of every day (`PanelTrainingRows`, each feature at its grain);
- the first window's training matrix (XGBoost's binned `QuantileDMatrix`);
- then the whole 13-window walk-forward (`forecasting.backtesting.walk_forward`, the trees of
  bench/backtest.py): its peak over the process before the panel, as bench/backtest.py measures
  it against mlforecast.

The last line divides a worker's memory (`--worker-gib`, less the process's own size before the
panel) by the walk-forward's peak per series at the largest size: the largest tenant, in series
of 730 days, that one walk-forward of a global model fits.

Usage: .venv/bin/python bench/memory.py [--sizes 1000,10000] [--worker-gib 24]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
if str(REPOSITORY_ROOT) not in sys.path:
    sys.path.insert(0, str(REPOSITORY_ROOT))

from bench.common import PeakMemory, child_result, xgboost_settings  # noqa: E402

MEBIBYTE = 2**20


def held_bytes() -> int:
    """Resident memory after freed heap is handed back to the OS (glibc's malloc_trim)."""
    import psutil

    gc.collect()
    with contextlib.suppress(OSError):  # not glibc: resident memory as it is
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return psutil.Process().memory_info().rss


def held_by_features_and_matrix(panel, *, first_cutoff) -> tuple[int, int]:
    """Bytes the features of every day hold, then the first window's training matrix."""
    from forecasting.families.xgboost_family import batched_quantile_matrix
    from forecasting.features import CategoryEncodings, PanelTrainingRows

    before = held_bytes()
    rows = PanelTrainingRows(panel=panel, encodings=CategoryEncodings.fit(panel=panel))
    after_features = held_bytes()
    n_days = panel.day_position(first_cutoff)
    matrix = batched_quantile_matrix(
        lambda: rows.batches(first_day=0, n_days=n_days), max_bin=256, nthread=2
    )
    after_matrix = held_bytes()
    assert matrix.num_row() > 0
    return after_features - before, after_matrix - after_features


def measure(*, data_path: Path, n_estimators: int) -> dict:
    """In this (fresh) process: bytes held after each part, and the walk-forward's peak."""
    import pandas as pd

    from bench.backtest import HORIZON, cutoffs_of
    from forecasting.backtesting import walk_forward
    from forecasting.panel import Panel

    frame = pd.read_parquet(data_path)
    cutoffs = cutoffs_of(frame)
    before = held_bytes()
    with PeakMemory() as building:
        panel = Panel.from_frame(frame)
    after_panel = held_bytes()
    features_bytes, matrix_bytes = held_by_features_and_matrix(panel, first_cutoff=cutoffs[0])
    settings = {"calibration_windows": 0, **xgboost_settings(n_estimators=n_estimators)}
    started = time.perf_counter()
    with PeakMemory() as walking:
        walk_forward(
            algorithm="xgboost",
            hyperparameters=settings,
            panel=panel,
            cutoffs=cutoffs,
            horizon=HORIZON,
        )
    return {
        "process_bytes": before,
        "panel_bytes": after_panel - before,
        "panel_building_peak_bytes": building.peak - before,
        "features_bytes": features_bytes,
        "matrix_bytes": matrix_bytes,
        "walk_forward_peak_bytes": walking.peak - before,
        "walk_forward_seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="series counts, comma-separated")
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--worker-gib", type=float, default=24.0)
    parser.add_argument("--child", choices=["walk_forward"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        print(json.dumps(measure(data_path=arguments.data, n_estimators=arguments.n_estimators)))
        return

    from bench.backtest import prepare_data

    print(
        f"walk-forward memory: {arguments.days} days a series, 13 weekly windows, XGBoost "
        f"{arguments.n_estimators} trees; MiB per 1,000 series (held after each part)",
        flush=True,
    )
    results = {}
    with tempfile.TemporaryDirectory(prefix="memory-bench-") as folder:
        for n_series in (int(size) for size in arguments.sizes.split(",")):
            data_path = prepare_data(
                n_series=n_series, days=arguments.days, seed=2024, folder=Path(folder)
            )
            result = child_result(
                script=__file__,
                path_name="walk_forward",
                options=["--data", str(data_path), "--n-estimators", str(arguments.n_estimators)],
            )
            results[n_series] = result
            thousands = n_series / 1000
            parts = [
                ("panel", result["panel_bytes"]),
                ("panel while built", result["panel_building_peak_bytes"]),
                ("features", result["features_bytes"]),
                ("training matrix", result["matrix_bytes"]),
                ("walk-forward peak", result["walk_forward_peak_bytes"]),
            ]
            print(
                f"  {n_series:>7} series: "
                + ", ".join(f"{name} {size / MEBIBYTE / thousands:.1f}" for name, size in parts)
                + f" ({result['walk_forward_seconds']:.0f} s)",
                flush=True,
            )
    largest = max(results)
    result = results[largest]
    per_series = result["walk_forward_peak_bytes"] / largest
    room = arguments.worker_gib * 2**30 - result["process_bytes"]
    print(
        f"  largest tenant for one walk-forward in a {arguments.worker_gib:g} GiB worker "
        f"(process {result['process_bytes'] / MEBIBYTE:.0f} MiB before the panel, "
        f"{per_series * 1000 / MEBIBYTE:.0f} MiB per 1,000 series at {largest:,}): "
        f"{room / per_series:,.0f} series",
        flush=True,
    )


if __name__ == "__main__":
    main()
