"""Every benchmark runs at its smallest size, so that none rots unnoticed.

Timings are not asserted (bench/ prints ratios against a reference for a person to read); what
is asserted is that each one runs to its comparison line. Those that time the platform against
PostgreSQL (api, fanout, import_sales, retrain from the database) run on a database of their own,
created empty on the test database's server, so each shows that it migrates what it needs; they
start real processes (gunicorn, Celery workers) and are marked slow. `bench/demo_t1.py` reads
what `make demo` left and is not run here.
"""

from __future__ import annotations

import os
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


# The benchmarks on PostgreSQL: their smallest arguments ("{tmp}": the test's folder) and a line
# of their report that compares.
ON_DATABASE = {
    "api": (["--rounds", "3", "--requests-per-client", "3", "--workers", "1"], "slowest read"),
    "retrain_from_db": (["--sizes", "100", "--days", "150", "--n-estimators", "3"], "time ratio"),
    "import_sales": (
        ["--rows-stores", "2", "--rows-products", "10", "--rows-days", "30"],
        "bulk_create",
    ),
    "fanout": (
        ["--sizes", "100", "--days", "150", "--n-estimators", "3", "--log-dir", "{tmp}"],
        "(identical to 1 worker)",
    ),
}


@pytest.fixture(scope="module")
def empty_database(django_db_blocker):
    """The URL of an empty database on the test database's server (dropped afterwards)."""
    import psycopg
    from django.db import connection

    from tests.processes import test_database_url

    name = f"bench_run_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    with django_db_blocker.unblock():
        url = test_database_url(name)
        server = {**connection.get_connection_params(), "dbname": "postgres", "autocommit": True}
        server.pop("cursor_factory", None)
        server.pop("context", None)
        server.pop("prepare_threshold", None)
    with psycopg.connect(**server) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    yield url
    with psycopg.connect(**server) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ON_DATABASE))
def test_the_benchmark_runs_on_a_fresh_database_at_its_smallest_size(
    name, empty_database, tmp_path
):
    from tests.processes import child_env

    arguments, comparison = ON_DATABASE[name]
    script = REPOSITORY_ROOT / "bench" / f"{name.removesuffix('_from_db')}.py"

    completed = subprocess.run(
        [sys.executable, str(script), *(a.format(tmp=tmp_path) for a in arguments)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        # The worker's own Redis database and queue (tests/isolation.py), the empty database.
        env=child_env(DATABASE_URL=empty_database),
        check=False,
    )

    assert completed.returncode == 0, completed.stderr[-4000:]
    assert comparison in completed.stdout, completed.stdout[-4000:]
