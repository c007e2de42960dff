"""Benchmark: one version's 13-window walk-forward spread over 1, then 2 Celery workers.

Usage: python bench/fanout.py [--sizes 1000] [--workers 1,2] [--days 730] [--n-estimators 100]
(or python bench/backtest.py --workers 1,2, which runs this)

Sales of N series go into the `bench` tenant of DATABASE_URL (the embedded PostgreSQL and Redis
when DATABASE_URL and REDIS_URL are unset, as the README's default set-up). For each worker
count it starts that many real worker processes (`celery worker --concurrency=1`, each pinned
to one core where the machine allows, so XGBoost trains on one thread), queues the weekly
walk-forward of one XGBoost version as the schedule does, and times it until its run is stored.
It does so refitting every window (13 tasks), then warm-started (the tenant policy
`walk_forward_warm_start`: 4 chains of up to 4 windows). Prints each time, its ratio to the
first worker count's, and whether the stored windows are identical.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# A queue of its own: workers of a running platform must not take these windows.
os.environ.setdefault("CELERY_QUEUE", "bench-fanout")

from bench import import_sales as import_bench  # noqa: E402  (sets Django up)
from bench.common import xgboost_settings  # noqa: E402

BASE_DIR = Path(__file__).resolve().parent.parent
STORED = ["window_start", "window_end", "mae", "wape", "bias", "interval_coverage", "n_points"]


def start_workers(count: int, log_dir: Path) -> list[subprocess.Popen]:
    from django.conf import settings

    env = dict(
        os.environ,
        DATABASE_URL=settings.DATABASE_URL,
        REDIS_URL=settings.REDIS_URL,
        CELERY_QUEUE=settings.CELERY_TASK_DEFAULT_QUEUE,
        PYTHONUNBUFFERED="1",
    )
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    workers = []
    for index in range(count):
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel=INFO"]
        command += ["--concurrency=1", "--pool=prefork", "--without-gossip", "--without-mingle"]
        command += [f"--hostname=bench{index}@%h"]
        if shutil.which("taskset") and len(cores) >= count:
            command = ["taskset", "-c", str(cores[index]), *command]
        log = (log_dir / f"worker{index}.log").open("wb")
        workers.append(
            subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
        )
    for index in range(count):
        _wait_for(lambda i=index: "ready." in (log_dir / f"worker{i}.log").read_text(), 120)
    return workers


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()


def _wait_for(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise TimeoutError("gave up waiting")


def bench_version(n_estimators: int):
    """A fresh XGBoost champion in the bench tenant (earlier bench versions removed)."""
    from mlops.models import ModelVersion

    ModelVersion.objects.all().delete()
    return ModelVersion.objects.create(
        version="v1",
        version_number=1,
        algorithm="xgboost",
        hyperparameters={**xgboost_settings(n_estimators=n_estimators), "calibration_windows": 0},
        status=ModelVersion.Status.CHAMPION,
        training_start="2024-01-01",
        training_end="2024-12-31",
    )


def timed_walk_forward(version, workers: int, log_dir: Path) -> tuple[float, list[dict]]:
    """Seconds from queueing the walk-forward to its run being stored, and the stored rows."""
    import redis
    from django.conf import settings

    from mlops.models import BacktestResult, WalkForwardRun
    from mlops.tasks import queue_walk_forward

    redis.Redis.from_url(settings.REDIS_URL).delete(settings.CELERY_TASK_DEFAULT_QUEUE)
    BacktestResult.objects.filter(model_version=version).delete()
    WalkForwardRun.objects.filter(model_version=version).delete()
    processes = start_workers(workers, log_dir)
    try:
        started = time.perf_counter()
        queue_walk_forward(version.pk)
        runs = WalkForwardRun.objects.filter(model_version=version).exclude(status="running")
        _wait_for(runs.exists, 3600)
        seconds = time.perf_counter() - started
    finally:
        stop_workers(processes)
    run = runs.latest("started_at")
    if run.status != WalkForwardRun.Status.SUCCEEDED:
        raise RuntimeError(f"the walk-forward failed: {run.error}")
    rows = BacktestResult.objects.filter(model_version=version).order_by("window_start")
    return seconds, list(rows.values(*STORED))


def main() -> None:
    arguments = parse_arguments()
    from django_tenants.utils import tenant_context

    from bench.retrain import load_into_bench_tenant, prepare_data

    counts = [int(value) for value in arguments.workers.split(",")]
    for n_series in [int(value) for value in arguments.sizes.split(",")]:
        log_dir = Path(arguments.log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        _, _, generated = prepare_data(
            n_series=n_series, days=arguments.days, seed=arguments.seed, folder=log_dir
        )
        load_into_bench_tenant(generated)
        tenant = import_bench.provision_tenant(slug="bench", name="Benchmarks").tenant
        for warm_start in (False, True):
            tenant.walk_forward_warm_start = warm_start
            tenant.save(update_fields=["walk_forward_warm_start"])
            with tenant_context(tenant):
                version = bench_version(arguments.n_estimators)
                results = {count: timed_walk_forward(version, count, log_dir) for count in counts}
            report(n_series, results, mode="warm start" if warm_start else "refit")


def report(n_series: int, results: dict[int, tuple[float, list[dict]]], *, mode: str) -> None:
    base_count, (base_seconds, base_rows) = next(iter(results.items()))
    print(
        f"\n{n_series:,} series, 13-window walk-forward ({mode}), XGBoost on one thread per worker"
    )
    print(f"{'workers':>8} {'seconds':>9} {'ratio':>7}  stored windows")
    for count, (seconds, rows) in results.items():
        same = "identical" if rows == base_rows else "DIFFERENT"
        print(
            f"{count:>8} {seconds:>9.1f} {seconds / base_seconds:>7.2f}  {len(rows)} ({same} "
            f"to {base_count} worker{'s' if base_count > 1 else ''})"
        )


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000", help="series counts, comma-separated")
    parser.add_argument("--workers", default="1,2", help="worker counts, the first the reference")
    parser.add_argument("--days", type=int, default=730, help="days of sales per series")
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--log-dir", default="/tmp/forecast-arena-bench-fanout")
    return parser.parse_args()


if __name__ == "__main__":
    main()
