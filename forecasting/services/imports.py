"""Sales import: validate a whole CSV/Parquet file (or frame), then upsert it with COPY in one transaction."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django_tenants.utils import get_public_schema_name

from forecasting.models import Product, Sale, Store
from forecasting.pgcopy import binary_dates, binary_rows, copy_in_binary
from forecasting.services.import_files import (
    FILE_FORMATS,
    MAX_LISTED_ERRORS,
    ImportRejected,
    RowError,
    Source,
    read_source,
)
from forecasting.services.sales_validation import (
    COLUMNS,
    REQUIRED_COLUMNS,
    ValidSales,
    existing_rows,
    validate_sales,
)

DEFAULT_CHUNK_ROWS = 250_000

# The name callers of the sales import know its refusal by.
SalesImportError = ImportRejected

__all__ = [
    "FILE_FORMATS",
    "MAX_LISTED_ERRORS",
    "ImportSummary",
    "RowError",
    "SalesImportError",
    "import_sales",
]

_TEMP_TABLE = "pg_temp.forecasting_sale_import"  # never a tenant table of that name


@dataclass(frozen=True)
class ImportSummary:
    """What one import wrote."""

    rows: int
    inserted: int
    updated: int
    series: int
    stores_created: int
    products_created: int
    date_min: dt.date | None
    date_max: dt.date | None
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")

    def lines(self) -> list[str]:
        """The summary as lines of text, for commands and logs."""
        return [
            f"Rows: {self.rows:,} ({self.inserted:,} inserted, {self.updated:,} replaced)",
            f"Series: {self.series:,} (stores created: {self.stores_created:,}, "
            f"products created: {self.products_created:,})",
            f"Dates: {self.date_min} to {self.date_max}",
            f"Seconds: {self.seconds:.2f} ({self.rows_per_second:,.0f} rows/s)",
        ]


def import_sales(
    *,
    source: Source,
    file_format: str | None = None,
    create_missing: bool = True,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> ImportSummary:
    """Validate the whole file, then upsert its sales in one transaction; returns an ImportSummary.

    `source` is a path, a binary file object or a DataFrame with the import columns;
    `file_format` ("csv" or "parquet") defaults to the file name's suffix. Unknown stores and
    products are created unless `create_missing` is false; `chunk_rows` rows go to COPY at a
    time. Raises SalesImportError (and writes nothing) when any row is at fault.
    """
    if connection.schema_name == get_public_schema_name():
        raise RuntimeError("Sales belong to a tenant: enter its schema before importing.")
    started = time.perf_counter()
    frame = read_source(source, file_format, columns=COLUMNS, required=REQUIRED_COLUMNS)
    sales = validate_sales(frame, create_missing=create_missing)
    inserted, updated, stores_created, products_created = _write(sales, chunk_rows=chunk_rows)
    return ImportSummary(
        rows=sales.n_rows,
        inserted=inserted,
        updated=updated,
        series=sales.n_series,
        stores_created=stores_created,
        products_created=products_created,
        date_min=_to_date(sales.day.min()),
        date_max=_to_date(sales.day.max()),
        seconds=time.perf_counter() - started,
    )


def read_sales_file(source: Source, file_format: str | None = None) -> pd.DataFrame:
    """The rows of a sales file (or frame), columns normalised, not yet validated: the sales
    import validates them when they are loaded."""
    return read_source(source, file_format, columns=COLUMNS, required=REQUIRED_COLUMNS)


# -- writing ---------------------------------------------------------------------------------


# The temp table's columns, in COPY order (prices travel as cents and a known flag: binary COPY
# rows here carry no NULL).
_COPY_COLUMNS = (
    ("store_id", "bigint"),
    ("product_id", "bigint"),
    ("date", "date"),
    ("quantity", "integer"),
    ("on_promotion", "boolean"),
    ("price_cents", "bigint"),
    ("price_known", "boolean"),
    ("in_stock", "boolean"),
    ("stock_on_hand", "integer"),
    ("stock_known", "boolean"),
)


@transaction.atomic
def _write(sales: ValidSales, *, chunk_rows: int) -> tuple[int, int, int, int]:
    """Create missing stores/products, COPY the rows to a temp table and upsert them; returns
    (inserted, updated, stores_created, products_created)."""
    store_ids, stores_created = _ensure_rows(
        Store, "code", sales.store_labels, names=sales.store_names
    )
    product_ids, products_created = _ensure_rows(
        Product,
        "sku",
        sales.product_labels,
        names=sales.product_names,
        departments=sales.product_departments,
    )
    rows = binary_rows(_COPY_COLUMNS, sales.n_rows)
    rows["store_id"] = store_ids[sales.store]
    rows["product_id"] = product_ids[sales.product]
    rows["date"] = binary_dates(sales.day)
    rows["quantity"] = sales.quantity
    if sales.on_promotion is not None:
        rows["on_promotion"] = sales.on_promotion
    if sales.price_cents is not None:
        rows["price_cents"] = sales.price_cents
        rows["price_known"] = sales.price_known
    if sales.in_stock is not None:
        rows["in_stock"] = sales.in_stock
        if sales.stock_on_hand is not None:
            rows["stock_on_hand"] = np.maximum(sales.stock_on_hand, 0)
            rows["stock_known"] = sales.stock_on_hand >= 0
    else:
        rows["in_stock"] = True
    # Key order keeps the unique index's pages hot and takes row locks in one order, so that
    # two imports touching the same series cannot deadlock.
    rows = rows[np.lexsort((rows["date"], rows["product_id"], rows["store_id"]))]

    table = Sale._meta.db_table
    replaced = ["quantity = EXCLUDED.quantity"]
    if sales.on_promotion is not None:
        replaced.append("on_promotion = EXCLUDED.on_promotion")
    if sales.price_cents is not None:
        replaced.append("price = EXCLUDED.price")
    if sales.in_stock is not None:
        replaced += ["in_stock = EXCLUDED.in_stock", "stock_on_hand = EXCLUDED.stock_on_hand"]
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {_TEMP_TABLE}")
        cursor.execute(
            f"CREATE TABLE {_TEMP_TABLE} "
            f"({', '.join(f'{name} {kind}' for name, kind in _COPY_COLUMNS)}) ON COMMIT DROP"
        )
        copy_in_binary(
            cursor,
            table=_TEMP_TABLE,
            columns=[name for name, _ in _COPY_COLUMNS],
            rows=rows,
            chunk_rows=chunk_rows,
        )
        # xmax is 0 only on a freshly inserted row version: it tells inserts from replacements.
        cursor.execute(
            f"WITH upserted AS ("
            f"INSERT INTO {table} (store_id, product_id, date, quantity, on_promotion, price, "
            f"in_stock, stock_on_hand) "
            f"SELECT store_id, product_id, date, quantity, on_promotion, "
            f"CASE WHEN price_known THEN price_cents / 100.0 END, in_stock, "
            f"CASE WHEN stock_known THEN stock_on_hand END FROM {_TEMP_TABLE} "
            f"ON CONFLICT (store_id, product_id, date) DO UPDATE SET {', '.join(replaced)} "
            f"RETURNING (xmax = 0) AS inserted) "
            f"SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) "
            f"FROM upserted"
        )
        inserted, updated = cursor.fetchone()
        cursor.execute(f"DROP TABLE {_TEMP_TABLE}")
    return inserted, updated, stores_created, products_created


def _ensure_rows(
    model,
    key: str,
    labels: np.ndarray,
    *,
    names: np.ndarray,
    departments: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """Ids of the labelled stores/products, creating missing ones and updating names (and
    departments) the file changes; returns (id per label, number created)."""
    existing = existing_rows(model, key, labels)
    missing = [index for index, label in enumerate(labels) if label not in existing]
    created = 0
    if missing:
        new_rows = [
            model(
                **{key: labels[index], "name": names[index]},
                **({"department": departments[index]} if departments is not None else {}),
            )
            for index in missing
        ]
        # A concurrent import may have created some of them: those are simply found below.
        model.objects.bulk_create(new_rows, ignore_conflicts=True)
        created = len(new_rows)
        existing |= existing_rows(model, key, labels[missing])
    changed = []
    for index, label in enumerate(labels):
        current = existing[label]
        new_name = names[index] or current[1]
        new_department = (departments[index] or current[2]) if departments is not None else None
        if new_name != current[1] or (departments is not None and new_department != current[2]):
            row = model(id=current[0], **{key: label, "name": new_name})
            if departments is not None:
                row.department = new_department
            changed.append(row)
    if changed:
        fields = ["name"] + (["department"] if departments is not None else [])
        model.objects.bulk_update(changed, fields, batch_size=1000)
    ids = np.array([existing[label][0] for label in labels], dtype=np.int64)
    return ids, created


def _to_date(day_number) -> dt.date | None:
    if day_number is None:
        return None
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(day_number))
