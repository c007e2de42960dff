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

By default (--from-db) the timed section starts from PostgreSQL, as the retrain does: the
generated sales (the 7 forecast days included, their quantities only for scoring) are imported
once into the `bench` tenant of DATABASE_URL (skipped when it already holds the same rows), then
our path times load_sales_panel + features + fit + forecast, and mlforecast's times a
pandas.read_sql of the same sales (sale joined to store and product) + its fit + predict. Both
drop the forecast days' quantities before fitting; their promotions stay known. The "read s"
columns are the database read (and, for mlforecast, shaping its input), and "no-read ratio"
compares the times without it. --no-from-db starts both paths from an in-memory frame.

Usage: .venv/bin/python bench/retrain.py --sizes 1000,10000 [--no-from-db]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

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


# -- the two paths, each run in a child process ------------------------------------------------


def run_project(*, data_path: Path, output_path: Path, n_estimators: int, **_) -> dict:
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


def split_for_mlforecast(frame, *, future):
    """From sales rows and a mask of the target days' rows: mlforecast's training frame, the
    target days' promotions (its X_df), and the store and product of each series id."""
    prepared, series_id = mlforecast_input(frame)
    training = prepared[~future].reset_index(drop=True)
    future_promotions = prepared.loc[future, ["unique_id", "ds", "on_promotion"]]
    keys = frame.loc[~future, ["store", "product"]].assign(unique_id=series_id[~future])
    return training, future_promotions, keys.drop_duplicates("unique_id")


def save_mlforecast_forecast(*, predicted, keys, output_path: Path) -> None:
    """mlforecast's predictions as store, product, target_date, value."""
    result = predicted.merge(keys, on="unique_id")
    result = result.rename(columns={"ds": "target_date", "xgboost": "value"})
    result[["store", "product", "target_date", "value"]].to_parquet(output_path)


def run_mlforecast(*, data_path: Path, output_path: Path, n_estimators: int, **_) -> dict:
    """The reference: mlforecast with XGBRegressor and the same features."""
    import gc

    import pandas as pd

    frame = pd.read_parquet(data_path)
    # Input shaping mlforecast needs (series id, static codes) is done before the clock starts.
    training, future_promotions, keys = split_for_mlforecast(
        frame, future=frame["quantity"].isna().to_numpy()
    )
    del frame

    forecaster = mlforecast_model(n_estimators=n_estimators)
    gc.collect()
    with PeakMemory() as memory:
        started, cpu_started = time.perf_counter(), time.process_time()
        forecaster.fit(training, static_features=["department_code", "store_code"])
        predicted = forecaster.predict(h=HORIZON, X_df=future_promotions)
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
    save_mlforecast_forecast(predicted=predicted, keys=keys, output_path=output_path)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_memory_bytes": memory.growth_bytes,
    }


def _import_bench():
    """bench/import_sales.py, whose import sets Django up for the benchmarks."""
    from bench import import_sales as import_bench

    return import_bench


def _bench_tenant():
    """The `bench` tenant, provisioned as bench/import_sales.py provisions it."""
    return _import_bench().provision_tenant(slug="bench", name="Benchmarks").tenant


def run_project_db(*, start: str, end: str, output_path: Path, n_estimators: int, **_) -> dict:
    """Our full retrain path: load_sales_panel -> XGBoost fit -> 7-day forecast."""
    import datetime as dt
    import gc

    import numpy as np

    tenant = _bench_tenant()
    from django_tenants.utils import tenant_context

    from forecasting.families.xgboost_family import XGBoostModel
    from forecasting.selectors import load_sales_panel

    first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    cutoff = last - dt.timedelta(days=HORIZON - 1)
    model = XGBoostModel(calibration_windows=0, **xgboost_settings(n_estimators=n_estimators))
    with tenant_context(tenant):
        gc.collect()
        with PeakMemory() as memory:
            started, cpu_started = time.perf_counter(), time.process_time()
            panel = load_sales_panel(start=first, end=last)
            read_seconds = time.perf_counter() - started
            # The forecast days' quantities are only for scoring.
            panel.quantity[:, panel.day_position(cutoff) :] = np.nan
            model.fit(panel.until(cutoff))
            forecasts = model.predict(panel, cutoff, horizon=HORIZON)
            seconds = time.perf_counter() - started
            cpu_seconds = time.process_time() - cpu_started
    forecasts.to_frame().to_parquet(output_path)
    return {
        "seconds": seconds,
        "read_seconds": read_seconds,
        "cpu_seconds": cpu_seconds,
        "peak_memory_bytes": memory.growth_bytes,
    }


def run_mlforecast_db(*, start: str, end: str, output_path: Path, n_estimators: int, **_) -> dict:
    """The reference fed from the database: pandas.read_sql -> mlforecast fit -> predict."""
    import datetime as dt
    import gc

    import pandas as pd
    import sqlalchemy

    schema = _bench_tenant().schema_name
    import psycopg
    from django.db import connection as django_connection

    # The connection Django makes (socket, database, options: the embedded PostgreSQL too).
    parameters = django_connection.get_connection_params()
    engine = sqlalchemy.create_engine(
        "postgresql+psycopg://", creator=lambda: psycopg.connect(**parameters)
    )
    query = sqlalchemy.text(
        f"SELECT st.code AS store, p.sku AS product, p.department, s.date, s.quantity, "
        f"s.on_promotion FROM {schema}.forecasting_sale s "
        f"JOIN {schema}.forecasting_store st ON st.id = s.store_id "
        f"JOIN {schema}.forecasting_product p ON p.id = s.product_id "
        f"WHERE s.date BETWEEN :start AND :end"
    )
    cutoff = pd.Timestamp(dt.date.fromisoformat(end) - dt.timedelta(days=HORIZON - 1))
    forecaster = mlforecast_model(n_estimators=n_estimators)
    gc.collect()
    with PeakMemory() as memory:
        started, cpu_started = time.perf_counter(), time.process_time()
        with engine.connect() as connection:
            frame = pd.read_sql(
                query,
                connection,
                params={"start": dt.date.fromisoformat(start), "end": dt.date.fromisoformat(end)},
                parse_dates=["date"],
            )
        training, future_promotions, keys = split_for_mlforecast(
            frame, future=(frame["date"] >= cutoff).to_numpy()
        )
        del frame
        read_seconds = time.perf_counter() - started
        forecaster.fit(training, static_features=["department_code", "store_code"])
        predicted = forecaster.predict(h=HORIZON, X_df=future_promotions)
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
    save_mlforecast_forecast(predicted=predicted, keys=keys, output_path=output_path)
    return {
        "seconds": seconds,
        "read_seconds": read_seconds,
        "cpu_seconds": cpu_seconds,
        "peak_memory_bytes": memory.growth_bytes,
    }


PATHS = {"project": run_project, "mlforecast": run_mlforecast}
DB_PATHS = {"project": run_project_db, "mlforecast": run_mlforecast_db}


# -- the parent: data, children, report --------------------------------------------------------


def prepare_data(
    *, n_series: int, days: int, seed: int, folder: Path
) -> tuple[Path, object, object]:
    """Generated sales with the last HORIZON days' quantities hidden (their promotions stay
    known, as planned promotions); returns the file, the hidden actuals and the generated
    sales as they are (for the database)."""
    import numpy as np

    from forecasting.synthetic import generate_sales

    stores = max(n_series // PRODUCTS_PER_STORE, 1)
    sales = generate_sales(
        stores=stores, products=PRODUCTS_PER_STORE, days=days + HORIZON, seed=seed
    )
    generated = sales
    sales = sales[["date", "store", "product", "department", "quantity", "on_promotion"]]
    cutoff = sales["date"].max() - np.timedelta64(HORIZON - 1, "D")
    hidden = sales["date"] >= cutoff
    actuals = sales.loc[hidden, ["store", "product", "date", "quantity"]].copy()
    sales = sales.assign(quantity=sales["quantity"].astype("float64"))
    sales.loc[hidden, "quantity"] = np.nan
    path = folder / f"sales_{n_series}.parquet"
    sales.to_parquet(path)
    return path, actuals, generated


def load_into_bench_tenant(sales) -> tuple[str, str]:
    """Puts the generated sales into the `bench` tenant unless it already holds exactly them
    (same row count, date range and total quantity); returns the first and last day."""
    import_bench = _import_bench()
    from django.db import connection
    from django.db.models import Count, Max, Min, Sum
    from django_tenants.utils import tenant_context

    from forecasting.models import Sale

    expected = {
        "rows": len(sales),
        "first": sales["date"].min().date(),
        "last": sales["date"].max().date(),
        "total": int(sales["quantity"].sum()),
    }
    tenant = import_bench.provision_tenant(slug="bench", name="Benchmarks").tenant
    with tenant_context(tenant):
        held = Sale.objects.aggregate(
            rows=Count("pk"), first=Min("date"), last=Max("date"), total=Sum("quantity")
        )
        if held != expected:
            import_bench._empty_sales()
            summary = import_bench.import_sales(source=sales)
            print(
                f"  ({summary.rows:,} rows imported into the bench tenant in "
                f"{summary.seconds:.0f} s)",
                flush=True,
            )
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE forecasting_sale")
    return expected["first"].isoformat(), expected["last"].isoformat()


def run_child(
    *,
    path_name: str,
    data_path: Path,
    output_path: Path,
    n_estimators: int,
    window: tuple[str, str] | None,
) -> dict:
    database = (
        ["--from-db", "--start", window[0], "--end", window[1]] if window else ["--no-from-db"]
    )
    return child_result(
        script=__file__,
        path_name=path_name,
        options=[
            "--data",
            str(data_path),
            "--output",
            str(output_path),
            "--n-estimators",
            str(n_estimators),
            *database,
        ],
    )


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
    arguments = parse_arguments()
    if arguments.child:
        run_as_child(arguments)
        return
    print_header(arguments)
    with tempfile.TemporaryDirectory(prefix="retrain-bench-") as folder:
        for n_series in (int(size) for size in arguments.sizes.split(",")):
            data_path, actuals, generated = prepare_data(
                n_series=n_series, days=arguments.days, seed=arguments.seed, folder=Path(folder)
            )
            window = load_into_bench_tenant(generated) if arguments.from_db else None
            del generated
            results, wapes = best_runs(
                arguments,
                n_series=n_series,
                folder=Path(folder),
                data_path=data_path,
                actuals=actuals,
                window=window,
            )
            print(report_line(n_series, results, wapes, from_db=arguments.from_db), flush=True)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="series counts, comma-separated")
    parser.add_argument("--days", type=int, default=730, help="training days per series")
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument(
        "--repeats", type=int, default=2, help="runs of each path; the fastest is reported"
    )
    parser.add_argument(
        "--from-db",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time both paths from the sales in PostgreSQL (the bench tenant of DATABASE_URL)",
    )
    parser.add_argument("--child", choices=sorted(PATHS), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--start", help=argparse.SUPPRESS)
    parser.add_argument("--end", help=argparse.SUPPRESS)
    return parser.parse_args()


def run_as_child(arguments: argparse.Namespace) -> None:
    """Run the one path the parent asked for and print its result as JSON."""
    paths = DB_PATHS if arguments.from_db else PATHS
    result = paths[arguments.child](
        data_path=arguments.data,
        output_path=arguments.output,
        n_estimators=arguments.n_estimators,
        start=arguments.start,
        end=arguments.end,
    )
    print(json.dumps(result))


def print_header(arguments: argparse.Namespace) -> None:
    source = "from PostgreSQL" if arguments.from_db else "from an in-memory frame"
    print(
        f"retrain benchmark {source}: XGBoost hist, {arguments.n_estimators} trees, "
        f"{os.cpu_count()} CPU threads, {arguments.days} training days, {HORIZON}-day forecast, "
        f"best of {arguments.repeats} runs per path"
    )
    header = f"{'series':>7} {'project s':>10} {'mlforecast s':>13} {'time ratio':>11} "
    if arguments.from_db:
        header += f"{'project read s':>15} {'mlforecast read s':>18} {'no-read ratio':>14} "
    header += (
        f"{'cpu ratio':>10} {'project MiB':>12} {'mlforecast MiB':>15} {'memory ratio':>13} "
        f"{'project WAPE':>13} {'mlforecast WAPE':>16} {'WAPE rel diff':>14}"
    )
    print(header, flush=True)


def best_runs(
    arguments: argparse.Namespace,
    *,
    n_series: int,
    folder: Path,
    data_path: Path,
    actuals,
    window: tuple[str, str] | None,
) -> tuple[dict[str, dict], dict[str, float]]:
    """Each path's best numbers over the repeats (each number its smallest), and its WAPE."""
    results, wapes = {}, {}
    for repeat in range(arguments.repeats):
        # Alternate which path goes first, so that a burst of load from other
        # processes does not always land on the same one; keep each path's fastest run.
        order = ("project", "mlforecast") if repeat % 2 == 0 else ("mlforecast", "project")
        for path_name in order:
            output_path = folder / f"forecast_{path_name}_{n_series}.parquet"
            run = run_child(
                path_name=path_name,
                data_path=data_path,
                output_path=output_path,
                n_estimators=arguments.n_estimators,
                window=window,
            )
            if "read_seconds" in run:
                run["compute_seconds"] = run["seconds"] - run["read_seconds"]
            best = results.get(path_name)
            results[path_name] = (
                run if best is None else {name: min(best[name], run[name]) for name in run}
            )
            wapes[path_name] = forecast_wape(forecast_path=output_path, actuals=actuals)
    return results, wapes


def report_line(
    n_series: int, results: dict[str, dict], wapes: dict[str, float], *, from_db: bool
) -> str:
    """One row of the report: both paths' times, memory and WAPE, and their ratios."""
    ours, reference = results["project"], results["mlforecast"]
    mebibyte = 2**20
    line = (
        f"{n_series:>7} {ours['seconds']:>10.2f} {reference['seconds']:>13.2f} "
        f"{ours['seconds'] / reference['seconds']:>11.2f} "
    )
    if from_db:
        line += (
            f"{ours['read_seconds']:>15.2f} {reference['read_seconds']:>18.2f} "
            f"{ours['compute_seconds'] / reference['compute_seconds']:>14.2f} "
        )
    line += (
        f"{ours['cpu_seconds'] / reference['cpu_seconds']:>10.2f} "
        f"{ours['peak_memory_bytes'] / mebibyte:>12.0f} "
        f"{reference['peak_memory_bytes'] / mebibyte:>15.0f} "
        f"{ours['peak_memory_bytes'] / max(reference['peak_memory_bytes'], 1):>13.2f} "
        f"{wapes['project']:>13.2f} {wapes['mlforecast']:>16.2f} "
        f"{(wapes['project'] - wapes['mlforecast']) / wapes['mlforecast']:>+14.2%}"
    )
    return line


if __name__ == "__main__":
    main()
