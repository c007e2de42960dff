"""Every benchmark that needs no database runs at its smallest size, so that none rots unnoticed.

Timings are not asserted (bench/ prints ratios against a reference for a person to read); what
is asserted is that each one runs to its comparison line. The benchmarks that time the platform
against PostgreSQL (api, fanout, import_sales, demo_t1, retrain from the database) provision a
tenant of their own in DATABASE_URL's database and take minutes, so they are not run here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.nodb

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]

# Each benchmark: its smallest arguments, and a line of its report that compares.
SMALLEST = {
    "backtest": (
        ["--sizes", "100", "--days", "150", "--n-estimators", "3", "--warm-rounds", "1"],
        "warm start/refit: time",
    ),
    "backtest_plain": (
        ["--sizes", "100", "--days", "150", "--paths", "default,mlforecast_plain"],
        "default recipe vs plain mlforecast: WAPE",
    ),
    "retrain": (
        ["--sizes", "100", "--days", "150", "--n-estimators", "3", "--no-from-db"],
        "time ratio",
    ),
    "memory": (
        ["--sizes", "100", "--days", "150", "--n-estimators", "3"],
        "largest tenant for one walk-forward",
    ),
    "known_inputs": (["--series", "100", "--days", "200", "--windows", "1"], "WAPE"),
    "intermittent": (["--series", "200", "--days", "200", "--windows", "1"], "intermittent vs"),
    "bias": (["--series", "100", "--days", "200", "--windows", "1"], "by step"),
    "drift_adaptation": (["--seeds", "3", "--stores", "2", "--products", "20"], "MAE ratio"),
}


@pytest.mark.parametrize("name", sorted(SMALLEST))
def test_the_benchmark_runs_to_its_comparison_at_its_smallest_size(name, tmp_path):
    arguments, comparison = SMALLEST[name]
    script = REPOSITORY_ROOT / "bench" / f"{name.removesuffix('_plain')}.py"

    completed = subprocess.run(
        [sys.executable, str(script), *arguments],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr[-4000:]
    assert comparison in completed.stdout, completed.stdout[-4000:]
