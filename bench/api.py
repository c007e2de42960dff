"""Benchmark of the API's reads under gunicorn, against the floor: a tenant-routed request that
does nothing (`GET /api/v1/nosuch`, a 404 in the API's error shape), measured in the same run.

Runs gunicorn as production does (`gunicorn config.wsgi:application`, sync workers, DEBUG off)
on the services of the README's default set-up: embedded PostgreSQL and Redis under .local/
when DATABASE_URL and REDIS_URL are unset, else those. The `benchapi` tenant (its own, so that
no daily job of another tenant sees its made-up days) is provisioned and filled once with a
model registry's worth of rows: versions in the global and department segments with their
status changes and 60 days of T-1 results, forecast runs, walk-forward windows, alerts,
experiments with their steps, retrains, a promotion calendar and drift incidents. A viewer's
token reads every GET endpoint of docs/openapi.yaml.

For each read it prints, at 1 client, the median and p99 latency, and at 8 clients the
throughput and p99, each beside its ratio to the floor's. Repeated reads are answered from the
tenant's read cache (config/read_cache.py); the last column ("fresh") is the median of the
first read after a write of the tenant's data, whose answer is computed afresh (the token's
user and permissions stay cached: such a write leaves them). Reads are measured in rounds (every
read once per round) so that a noisy moment of a shared machine falls on all of them.

Usage: .venv/bin/python bench/api.py [--rounds 300] [--requests-per-client 60] [--workers 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
if str(REPOSITORY_ROOT) not in sys.path:
    sys.path.insert(0, str(REPOSITORY_ROOT))

SLUG = "benchapi"
HOST = f"{SLUG}.localhost"
FLOOR = "/api/v1/nosuch"
MADE_ON = dt.date(2026, 3, 2)


def start_services() -> None:
    """DATABASE_URL and REDIS_URL for this process and gunicorn: the embedded services when
    unset (as `make demo` starts them; they live as long as this process)."""
    from config import embedded

    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = embedded.postgres_url()
    if not os.environ.get("REDIS_URL"):
        os.environ["REDIS_URL"] = embedded.redis_url()


def set_up_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["DJANGO_DEBUG"] = "false"
    os.environ.setdefault("DJANGO_SECRET_KEY", f"bench-{secrets.token_hex(16)}")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if "tenants_tenant" not in connection.introspection.table_names():
        call_command("migrate_schemas", "--shared", "--executor=standard", verbosity=0)


def _fill_tenant() -> None:
    """The rows behind every read (skipped when the tenant has them already)."""
    from mlops.models import ModelVersion

    if ModelVersion.objects.exists():
        return
    stores, products = _catalogue()
    versions = _registry()
    _version_history(versions)
    _forecast_runs(stores=stores, product=products[0])
    alerts = _alerts(versions)
    _experiments(versions)
    _operations(versions=versions, stores=stores, products=products, alerts=alerts)
    _viewer()


def _catalogue() -> tuple[list, list]:
    """20 stores, 50 products over three departments, one demand class; returns both lists."""
    from forecasting.models import Product, SeriesDemandClass, Store

    stores = Store.objects.bulk_create(
        Store(code=f"S{n:03d}", name=f"Store {n}") for n in range(20)
    )
    products = Product.objects.bulk_create(
        Product(sku=f"SKU{n:05d}", department=["Electronics", "Grocery", "Home"][n % 3])
        for n in range(50)
    )
    SeriesDemandClass.objects.create(
        store=stores[0], product=products[0], demand_class="smooth", adi=1.0, cv2=0.2, as_of=MADE_ON
    )
    return stores, products


def _registry() -> list:
    """40 versions over the global and two department segments: a champion each, a few
    challengers in shadow, the rest archived; returns them in order."""
    from mlops.models import ModelVersion

    statuses = ModelVersion.Status
    common = {
        "name": "demand_forecast",
        "algorithm": "xgboost",
        "training_start": dt.date(2024, 1, 1),
        "training_end": MADE_ON - dt.timedelta(days=1),
        "training_rows": 500_000,
        "metrics": {"mae": 4.0, "mape": 30.0},
    }
    versions = []
    for number in range(1, 41):
        segment = ["global", "department:Electronics", "department:Grocery"][number % 3]
        if number in (38, 39, 40):
            status = statuses.CHAMPION
        elif number > 33:
            status = statuses.CHALLENGER
        else:
            status = statuses.ARCHIVED
        versions.append(
            ModelVersion.objects.create(
                version_number=number,
                version=f"v{number}",
                segment=segment,
                status=status,
                routing_mode="shadow" if status == statuses.CHALLENGER else "none",
                last_evaluation={"promote": False, "test": {"confidence": 0.8}, "reason": "wait"},
                **common,
            )
        )
    return versions


def _version_history(versions: list) -> None:
    """Each version's status changes, 60 days of T-1 results and 13 walk-forward windows."""
    from mlops.models import BacktestResult, ModelTransition, ModelVersion

    for version in versions:
        ModelTransition.objects.bulk_create(
            ModelTransition(
                model_version=version,
                from_status=ModelVersion.Status.CANDIDATE,
                to_status=version.status,
                actor_label="system",
                reason="benchmark",
                evidence={"mae": 4.0},
            )
            for _ in range(3)
        )
        BacktestResult.objects.bulk_create(
            BacktestResult(
                model_version=version,
                kind=BacktestResult.Kind.T_MINUS_1,
                window_start=MADE_ON - dt.timedelta(days=day),
                window_end=MADE_ON - dt.timedelta(days=day),
                mae=4.0 + (day % 5) / 10,
                n_points=1000,
            )
            for day in range(1, 61)
        )
        BacktestResult.objects.bulk_create(
            BacktestResult(
                model_version=version,
                kind=BacktestResult.Kind.WALK_FORWARD,
                window_start=MADE_ON - dt.timedelta(weeks=week + 1),
                window_end=MADE_ON - dt.timedelta(weeks=week + 1) + dt.timedelta(days=6),
                mae=4.2,
                n_points=7000,
            )
            for week in range(13)
        )


def _forecast_runs(*, stores: list, product) -> None:
    """30 daily 7-day runs of every active version for one product in every store; the global
    champion's are served."""
    from forecasting.models import Forecast
    from mlops.models import ModelVersion

    statuses = ModelVersion.Status
    champion = ModelVersion.objects.get(status=statuses.CHAMPION, segment="global")
    Forecast.objects.bulk_create(
        Forecast(
            model_version=version,
            store=each_store,
            product=product,
            made_on=MADE_ON - dt.timedelta(days=run),
            target_date=MADE_ON - dt.timedelta(days=run) + dt.timedelta(days=step),
            value=10.0 + step,
            lower=8.0,
            upper=12.0 + step,
            served=version.pk == champion.pk,
        )
        for version in ModelVersion.objects.exclude(status=statuses.ARCHIVED)
        for each_store in stores
        for run in range(30)
        for step in range(7)
    )


def _alerts(versions: list) -> list:
    """200 alerts of mixed types and severities; returns them."""
    from alerts.models import MLAlert
    from alerts.services import raise_alert

    return [
        raise_alert(
            alert_type="drift_detected" if n % 2 else "promotion_pending",
            severity=MLAlert.Severity.values[n % 3],
            title=f"Alert {n}",
            message="Benchmark alert.",
            metadata={"n": n},
            dedup_key=f"bench-{n}",
            model_version=versions[n % len(versions)],
        )
        for n in range(200)
    ]


def _experiments(versions: list) -> None:
    """60 experiments in shadow testing, each with three versions and four steps."""
    from experiments.models import ExperimentEvent, ModelExperiment

    for n in range(60):
        experiment = ModelExperiment.objects.create(
            name=f"Experiment {n}",
            hypothesis="A dedicated model per department forecasts better.",
            experiment_type=ModelExperiment.ExperimentType.SEGMENTATION,
            configuration={"segments": ["Electronics", "Grocery"]},
            status=ModelExperiment.Status.SHADOW_TESTING,
        )
        experiment.model_versions.set(versions[34:37])
        ExperimentEvent.objects.bulk_create(
            ExperimentEvent(
                experiment=experiment,
                from_status="proposed",
                to_status="approved",
                actor_label="maria",
                note="benchmark",
            )
            for _ in range(4)
        )


def _operations(*, versions: list, stores: list, products: list, alerts: list) -> None:
    """150 retrains, a promotion calendar of 300 plans and 30 resolved drift incidents."""
    from forecasting.models import PlannedPromotion
    from mlops.models import DriftIncident, ModelRetrainingLog, Trigger

    ModelRetrainingLog.objects.bulk_create(
        ModelRetrainingLog(trigger=Trigger.SCHEDULED, resulting_version=versions[n % len(versions)])
        for n in range(150)
    )
    PlannedPromotion.objects.bulk_create(
        PlannedPromotion(
            product=products[n % len(products)],
            store=stores[n % len(stores)],
            start_date=MADE_ON + dt.timedelta(days=n % 60),
            end_date=MADE_ON + dt.timedelta(days=n % 60 + 6),
            discount_pct=20.0,
            known_since=dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
        )
        for n in range(300)
    )
    DriftIncident.objects.bulk_create(
        DriftIncident(
            champion=versions[n],
            segment=versions[n].segment,
            status=DriftIncident.Status.RESOLVED,
            resolution=DriftIncident.Resolution.RECOVERED,
            change_date=MADE_ON - dt.timedelta(days=40 - n),
            opened_on=MADE_ON - dt.timedelta(days=38 - n),
            last_checked_on=MADE_ON,
            resolved_on=MADE_ON,
            alert=alerts[n],
        )
        for n in range(30)
    )


def _viewer() -> None:
    """The viewer whose token reads the API."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    viewer, _ = get_user_model().objects.get_or_create(username="bench-viewer")
    viewer.groups.add(Group.objects.get(name="viewer"))


def prepare_tenant() -> dict[str, str]:
    """Provision and fill the tenant; returns a viewer's token and the ids the reads name."""
    from django.contrib.auth import get_user_model
    from django_tenants.utils import schema_context
    from rest_framework.authtoken.models import Token

    from alerts.models import MLAlert
    from experiments.models import ModelExperiment
    from mlops.models import ModelRetrainingLog
    from tenants.services import provision_tenant

    provision_tenant(slug=SLUG, name="API benchmark", domain=HOST, verbosity=0)
    with schema_context(SLUG):
        _fill_tenant()
        viewer = get_user_model().objects.get(username="bench-viewer")
        token, _ = Token.objects.get_or_create(user=viewer)
        return {
            "token": token.key,
            "alert": str(MLAlert.objects.order_by("-pk").values_list("pk", flat=True)[0]),
            "experiment": str(
                ModelExperiment.objects.order_by("-pk").values_list("pk", flat=True)[0]
            ),
            "log": str(ModelRetrainingLog.objects.order_by("-pk").values_list("pk", flat=True)[0]),
        }


def read_paths(ids: dict[str, str]) -> list[str]:
    """Every GET endpoint of the API a tenant user reads (docs/openapi.yaml), list and detail."""
    return [
        "/api/v1/models/health",
        "/api/v1/models/history",
        "/api/v1/models/backtest/v40",
        "/api/v1/models/backtest/v40?kind=t_minus_1",
        "/api/v1/models/retraining-log",
        f"/api/v1/models/retraining-log/{ids['log']}",
        "/api/v1/drift-incidents",
        "/api/v1/ml-alerts",
        "/api/v1/ml-alerts/stats",
        f"/api/v1/ml-alerts/{ids['alert']}",
        "/api/v1/experiments",
        f"/api/v1/experiments/{ids['experiment']}",
        f"/api/v1/experiments/{ids['experiment']}/results",
        "/api/v1/forecasts?store=S000&product=SKU00000&days=7",
        "/api/v1/promotions",
    ]


# -- the server and the clients ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gunicorn(*, port: int, workers: int) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]
    env = {**os.environ, "DJANGO_DEBUG": "false", "LOG_LEVEL": "WARNING"}
    # Its log (a warning per 404 of the floor) is left out of the table.
    server = subprocess.Popen(
        command,
        cwd=REPOSITORY_ROOT,
        env=env,
        start_new_session=True,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            get(port, FLOOR, {})
            return server
        except OSError:
            if server.poll() is not None:
                raise RuntimeError("gunicorn exited at start") from None
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer within 60 s")


def get(port: int, path: str, headers: dict[str, str]) -> tuple[int, float]:
    """One GET on a new connection (gunicorn's sync workers close each one): status, seconds."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Host": HOST, **headers})
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    return response.status, time.perf_counter() - started


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def one_client(
    port: int, paths: list[str], headers, *, rounds: int, after_a_write: bool = False
) -> dict[str, list[float]]:
    """Latencies of every path, one request of each per round. `after_a_write`: each read
    (the floor aside) is the first since the tenant's data changed (as by its daily jobs, which
    leave users and tokens alone), so its answer is computed afresh rather than read from the
    cache (config/read_cache.py)."""
    from config.read_cache import renew_generation

    times: dict[str, list[float]] = {path: [] for path in paths}
    for _ in range(rounds):
        for path in paths:
            if after_a_write and path != FLOOR:
                renew_generation(SLUG, auth=False)
            status, seconds = get(port, path, headers)
            expected = 404 if path == FLOOR else 200
            if status != expected:
                raise RuntimeError(f"{path} answered {status}")
            times[path].append(seconds)
    return times


def eight_clients(port: int, path: str, headers, *, clients: int, each: int):
    """Throughput (requests/s) and latencies of `clients` threads reading `path` at once."""
    latencies: list[float] = []
    lock = threading.Lock()

    def client() -> None:
        mine = [get(port, path, headers)[1] for _ in range(each)]
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return clients * each / (time.perf_counter() - started), latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=300, help="requests per read, 1 client")
    parser.add_argument("--requests-per-client", type=int, default=60, help="at 8 clients")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    args = parser.parse_args()

    set_up = "embedded" if not os.environ.get("DATABASE_URL") else "DATABASE_URL/REDIS_URL"
    start_services()
    set_up_django()
    ids = prepare_tenant()
    headers = {"Authorization": f"Token {ids['token']}"}
    paths = read_paths(ids)
    port = free_port()
    server = start_gunicorn(port=port, workers=args.workers)
    try:
        one_client(port, [FLOOR, *paths], headers, rounds=20)  # warm both workers
        single = one_client(port, [FLOOR, *paths], headers, rounds=args.rounds)
        fresh = one_client(port, [FLOOR, *paths], headers, rounds=args.rounds, after_a_write=True)
        loaded = {
            path: eight_clients(
                port, path, headers, clients=args.clients, each=args.requests_per_client
            )
            for path in [FLOOR, *paths]
        }
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    floor_median = statistics.median(single[FLOOR])
    floor_p99 = percentile(single[FLOOR], 0.99)
    floor_rps, floor_latencies = loaded[FLOOR]
    floor_loaded_p99 = percentile(floor_latencies, 0.99)
    print(
        f"gunicorn, {args.workers} sync workers, DEBUG off; services: {set_up}; "
        f"{args.rounds} requests per read at 1 client, "
        f"{args.clients}x{args.requests_per_client} at {args.clients} clients"
    )
    header = (
        f"{'read':<52} {'median ms':>9} {'x floor':>7} {'p99 ms':>7} {'x floor':>7} | "
        f"{'req/s':>6} {'x floor':>7} {'p99 ms':>7} {'x floor':>7} | "
        f"{'fresh ms':>8} {'x floor':>7}"
    )
    print(header)
    print("-" * len(header))
    fresh_floor = statistics.median(fresh[FLOOR])
    worst = worst_fresh = 0.0
    for path in [FLOOR, *paths]:
        median = statistics.median(single[path])
        p99 = percentile(single[path], 0.99)
        rps, latencies = loaded[path]
        loaded_p99 = percentile(latencies, 0.99)
        fresh_median = statistics.median(fresh[path])
        if path != FLOOR:
            worst = max(worst, median / floor_median)
            worst_fresh = max(worst_fresh, fresh_median / fresh_floor)
        print(
            f"{path[:52]:<52} {median * 1000:9.2f} {median / floor_median:7.2f} "
            f"{p99 * 1000:7.2f} {p99 / floor_p99:7.2f} | {rps:6.0f} {rps / floor_rps:7.2f} "
            f"{loaded_p99 * 1000:7.2f} {loaded_p99 / floor_loaded_p99:7.2f} | "
            f"{fresh_median * 1000:8.2f} {fresh_median / fresh_floor:7.2f}"
        )
    print(f"\nslowest read at 1 client: {worst:.2f}x the floor's median (goal: <= 3x)")
    print(
        f"slowest first read after a write (computed, not cached): {worst_fresh:.2f}x "
        "the floor's median"
    )


if __name__ == "__main__":
    main()
