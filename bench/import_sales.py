"""Benchmark: a 1,000,000-row sales file through the COPY import, against Django bulk_create.

Usage: python bench/import_sales.py [--rows-stores 20 --rows-products 100 --rows-days 500]
                                    [--panel] [--panel-stores 100 --panel-products 100]

Uses the `bench` tenant of whatever DATABASE_URL points at (provisioned if missing; its sales,
stores and products are replaced). Prints rows/s of the import (new rows, then the same file
re-sent, which replaces every row) and of bulk_create(update_conflicts=True) on a 100,000-row
slice, with the ratio. With --panel it also loads 10,000 series x 730 days and times
load_sales_panel against fetching the same rows with a plain cursor and Panel.from_frame.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Query logging (DEBUG) would slow the ORM reference and hold its SQL in memory.
os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("DJANGO_SECRET_KEY", f"bench-{secrets.token_hex(16)}")

import django  # noqa: E402

django.setup()

import pandas as pd  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django_tenants.utils import schema_context  # noqa: E402

from forecasting.models import Product, Sale, Store  # noqa: E402
from forecasting.panel import Panel  # noqa: E402
from forecasting.selectors import load_sales_panel  # noqa: E402
from forecasting.services import import_sales  # noqa: E402
from forecasting.synthetic import generate_sales  # noqa: E402
from tenants.services import provision_tenant  # noqa: E402

# A database that lacks migrations (the embedded one on a new machine, a new DATABASE_URL, or one
# left by an older checkout) is brought up to date first, the shared schema and every tenant's
# (the bench tenant's included), as a deploy does; with nothing to apply this takes a moment.
if "tenants_tenant" not in connection.introspection.table_names():
    call_command("migrate_schemas", "--shared", "--executor=standard", verbosity=0)
else:
    call_command("migrate_schemas", "--executor=standard", verbosity=0)

END_DATE = dt.date(2025, 12, 31)
REFERENCE_ROWS = 100_000


def _empty_sales() -> None:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE forecasting_sale, forecasting_store, forecasting_product CASCADE")


def _bulk_create_reference(path: Path) -> float:
    """Seconds for the ORM to upsert the first REFERENCE_ROWS rows of the file (stores and
    products already present), the way a view or task would without COPY."""
    frame = pd.read_csv(path, nrows=REFERENCE_ROWS)
    stores = dict(Store.objects.values_list("code", "id"))
    products = dict(Product.objects.values_list("sku", "id"))
    started = time.perf_counter()
    with transaction.atomic():
        Sale.objects.bulk_create(
            [
                Sale(
                    store_id=stores[row.store],
                    product_id=products[row.product],
                    date=dt.date.fromisoformat(row.date),
                    quantity=int(row.quantity),
                    on_promotion=bool(row.on_promotion),
                    price=row.price,
                )
                for row in frame.itertuples(index=False)
            ],
            batch_size=5_000,
            update_conflicts=True,
            unique_fields=["store", "product", "date"],
            update_fields=["quantity", "on_promotion", "price"],
        )
    return time.perf_counter() - started


def bench_import(*, stores: int, products: int, days: int) -> None:
    sales = generate_sales(stores=stores, products=products, days=days, seed=1, end_date=END_DATE)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sales.csv"
        sales.to_csv(path, index=False)
        size_mb = path.stat().st_size / 2**20
        print(f"file: {len(sales):,} rows, {size_mb:.0f} MiB CSV ({stores}x{products}x{days})")

        # Reference first, on an empty table with the stores and products in place.
        _empty_sales()
        Store.objects.bulk_create([Store(code=code) for code in sales["store"].unique()])
        Product.objects.bulk_create(
            [
                Product(sku=sku, department=department)
                for sku, department in sales[["product", "department"]]
                .drop_duplicates()
                .itertuples(index=False)
            ],
        )
        reference_seconds = _bulk_create_reference(path)
        reference_rate = REFERENCE_ROWS / reference_seconds
        print(
            f"bulk_create(update_conflicts) {REFERENCE_ROWS:,} rows: {reference_seconds:.1f} s "
            f"= {reference_rate:,.0f} rows/s (1M extrapolated: {reference_seconds * len(sales) / REFERENCE_ROWS:.0f} s)"
        )

        _empty_sales()
        first = import_sales(source=path)
        assert first.inserted == len(sales), first
        print(
            f"import_sales, new rows:     {first.seconds:.1f} s = {first.rows_per_second:,.0f} rows/s "
            f"(x{first.rows_per_second / reference_rate:.1f} bulk_create)"
        )
        again = import_sales(source=path)
        assert again.updated == len(sales), again
        print(
            f"import_sales, all replaced: {again.seconds:.1f} s = {again.rows_per_second:,.0f} rows/s "
            f"(x{again.rows_per_second / reference_rate:.1f} bulk_create)"
        )


def bench_panel(*, stores: int, products: int, days: int = 730) -> None:
    expected_rows = stores * products * days
    if Sale.objects.count() != expected_rows:
        _empty_sales()
        sales = generate_sales(
            stores=stores, products=products, days=days, seed=2, end_date=END_DATE
        )
        summary = import_sales(source=sales)
        del sales
        print(
            f"loaded {summary.rows:,} rows in {summary.seconds:.0f} s "
            f"({summary.rows_per_second:,.0f} rows/s)"
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE forecasting_sale")

    started = time.perf_counter()
    panel = load_sales_panel()
    seconds = time.perf_counter() - started
    print(
        f"load_sales_panel: {panel.n_series:,} series x {panel.n_days} days "
        f"({expected_rows:,} rows) in {seconds:.1f} s"
    )
    del panel

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT st.code, p.sku, p.department, s.date, s.quantity, s.on_promotion, s.price "
            "FROM forecasting_sale s JOIN forecasting_store st ON st.id = s.store_id "
            "JOIN forecasting_product p ON p.id = s.product_id"
        )
        frame = pd.DataFrame(
            cursor.fetchall(),
            columns=["store", "product", "department", "date", "quantity", "on_promotion", "price"],
        )
    Panel.from_frame(frame)
    reference = time.perf_counter() - started
    print(
        f"reference (cursor.fetchall + Panel.from_frame): {reference:.1f} s "
        f"(load_sales_panel x{reference / seconds:.1f} faster)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-stores", type=int, default=20)
    parser.add_argument("--rows-products", type=int, default=100)
    parser.add_argument("--rows-days", type=int, default=500)
    parser.add_argument("--panel", action="store_true", help="also time a 10k x 730 panel load")
    parser.add_argument("--panel-stores", type=int, default=100)
    parser.add_argument("--panel-products", type=int, default=100)
    parser.add_argument("--skip-import", action="store_true")
    args = parser.parse_args()

    call_command("migrate_schemas", shared=True, verbosity=0)
    provision_tenant(slug="bench", name="Benchmarks")
    call_command("migrate_schemas", schema_name="bench", verbosity=0)  # an older bench tenant
    with schema_context("bench"):
        if not args.skip_import:
            bench_import(stores=args.rows_stores, products=args.rows_products, days=args.rows_days)
        if args.panel:
            bench_panel(stores=args.panel_stores, products=args.panel_products)


if __name__ == "__main__":
    main()
