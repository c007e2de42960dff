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
    Problems,
    RowError,
    Source,
    check_length,
    check_no_nul,
    days_of,
    flags_of,
    labels_of,
    numbers_of,
    read_source,
    storable,
    take,
)

REQUIRED_COLUMNS = ("date", "store", "product", "quantity")
OPTIONAL_COLUMNS = (
    "on_promotion",
    "price",
    "in_stock",
    "stock_on_hand",
    "department",
    "store_name",
    "product_name",
)
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
TEXT_COLUMNS = ("store", "product", "department", "store_name", "product_name")

DEFAULT_CHUNK_ROWS = 250_000
MAX_QUANTITY = 2**31 - 1  # PostgreSQL integer
MAX_PRICE = 10**10  # DecimalField(max_digits=12, decimal_places=2)

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
    sales = _validate(frame, create_missing=create_missing)
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


# -- validation ------------------------------------------------------------------------------


@dataclass
class _ValidSales:
    """A validated file as arrays: one entry per row, labels per store and product."""

    n_rows: int
    store: np.ndarray  # row -> index into store_labels
    store_labels: np.ndarray
    product: np.ndarray
    product_labels: np.ndarray
    day: np.ndarray  # days since 1970-01-01
    quantity: np.ndarray
    on_promotion: np.ndarray | None  # None: no column, re-sent rows keep their flag
    price_cents: np.ndarray | None  # None: no column, re-sent rows keep their price
    price_known: np.ndarray | None
    in_stock: np.ndarray | None  # None: no stock column, re-sent rows keep theirs
    stock_on_hand: np.ndarray | None  # -1 where the file gives none
    store_names: np.ndarray  # per store label, "" when the file gives none
    product_names: np.ndarray
    product_departments: np.ndarray
    n_series: int = 0


def _validate(frame: pd.DataFrame, *, create_missing: bool) -> _ValidSales:
    problems = Problems(frame, COLUMNS)
    check_no_nul(problems, frame, TEXT_COLUMNS)
    n_rows = len(frame)

    store, store_labels = labels_of(frame["store"])
    product, product_labels = labels_of(frame["product"])
    problems.add(store < 0, "store", "missing value")
    problems.add(product < 0, "product", "missing value")
    check_length(problems, "store", store, store_labels, Store._meta.get_field("code").max_length)
    check_length(
        problems, "product", product, product_labels, Product._meta.get_field("sku").max_length
    )

    day, missing_day, bad_day = days_of(frame["date"])
    problems.add(missing_day, "date", "missing value")
    problems.add(bad_day, "date", "not a date (expected YYYY-MM-DD)")

    quantity, missing_quantity, not_number = numbers_of(frame["quantity"])
    problems.add(missing_quantity, "quantity", "missing value")
    problems.add(not_number, "quantity", "not a number")
    with np.errstate(invalid="ignore"):
        problems.add(quantity < 0, "quantity", "negative quantity")
        problems.add(np.isfinite(quantity) & (quantity % 1 != 0), "quantity", "not a whole number")
        problems.add(quantity > MAX_QUANTITY, "quantity", f"larger than {MAX_QUANTITY:,}")

    on_promotion = None
    if "on_promotion" in frame:
        on_promotion, bad_promotion = flags_of(frame["on_promotion"])
        problems.add(bad_promotion, "on_promotion", "not true/false, 1/0 or yes/no")

    price_cents = price_known = None
    if "price" in frame:
        price, _, bad_price = numbers_of(frame["price"])
        problems.add(bad_price, "price", "not a number")
        with np.errstate(invalid="ignore"):
            problems.add(price < 0, "price", "negative price")
            problems.add(price >= MAX_PRICE, "price", f"not below {MAX_PRICE:,}")
        price_known = ~np.isnan(price)
        price_cents = np.rint(np.where(price_known, price, 0) * 100).astype(np.int64)

    in_stock, stock_on_hand = _stock(problems, frame)

    store_names = _names_per_label(problems, frame, "store_name", store, len(store_labels))
    product_names = _names_per_label(problems, frame, "product_name", product, len(product_labels))
    product_departments = _departments(problems, frame, product, product_labels)

    valid_key = (store >= 0) & (product >= 0) & ~missing_day & ~bad_day
    n_series = _check_duplicates(problems, store, product, day, valid_key, len(product_labels))
    _check_known(
        problems,
        store=store,
        store_labels=store_labels,
        product=product,
        product_labels=product_labels,
        product_departments=product_departments,
        create_missing=create_missing,
        has_department_column="department" in frame,
    )
    problems.raise_if_any()
    return _ValidSales(
        n_rows=n_rows,
        store=store,
        store_labels=store_labels,
        product=product,
        product_labels=product_labels,
        day=day,
        quantity=quantity.astype(np.int64),
        on_promotion=on_promotion,
        price_cents=price_cents,
        price_known=price_known,
        in_stock=in_stock,
        stock_on_hand=stock_on_hand,
        store_names=store_names,
        product_names=product_names,
        product_departments=product_departments,
        n_series=n_series,
    )


def _stock(problems: Problems, frame: pd.DataFrame) -> tuple[np.ndarray | None, np.ndarray | None]:
    """in_stock per row (from the in_stock column, else stock_on_hand > 0; blank = in stock)
    and stock_on_hand (-1 where not given); (None, None) when the file has neither column."""
    stock_on_hand = None
    if "stock_on_hand" in frame:
        stock, missing_stock, bad_stock = numbers_of(frame["stock_on_hand"])
        problems.add(bad_stock, "stock_on_hand", "not a number")
        with np.errstate(invalid="ignore"):
            problems.add(stock < 0, "stock_on_hand", "negative stock")
            problems.add(
                np.isfinite(stock) & (stock % 1 != 0), "stock_on_hand", "not a whole number"
            )
            problems.add(stock > MAX_QUANTITY, "stock_on_hand", f"larger than {MAX_QUANTITY:,}")
        stock_on_hand = np.where(missing_stock | bad_stock, -1, np.nan_to_num(stock)).astype(
            np.int64
        )
    if "in_stock" not in frame and stock_on_hand is None:
        return None, None
    # Stock on hand tells where the flag is blank (or absent); unknown stock means in stock.
    in_stock = np.ones(len(frame), dtype=bool) if stock_on_hand is None else stock_on_hand != 0
    if "in_stock" in frame:
        flag, bad_flag = flags_of(frame["in_stock"])
        problems.add(bad_flag, "in_stock", "not true/false, 1/0 or yes/no")
        column = frame["in_stock"]
        blank = np.asarray(column.isna() | (column.astype(str).str.strip() == ""), dtype=bool)
        in_stock = np.where(blank, in_stock, flag)
    return in_stock, stock_on_hand


def _names_per_label(
    problems: Problems, frame: pd.DataFrame, column: str, owner: np.ndarray, n_owners: int
) -> np.ndarray:
    """The first non-blank name given for each store/product ("" where none)."""
    names = np.full(n_owners, "", dtype=object)
    if column not in frame:
        return names
    name, labels = labels_of(frame[column])
    model, field_name = (Store, "name") if column == "store_name" else (Product, "name")
    check_length(problems, column, name, labels, model._meta.get_field(field_name).max_length)
    rows = np.flatnonzero((owner >= 0) & (name >= 0))
    owners, first = np.unique(owner[rows], return_index=True)
    names[owners] = labels[name[rows[first]]]
    return names


def _departments(
    problems: Problems, frame: pd.DataFrame, product: np.ndarray, product_labels: np.ndarray
) -> np.ndarray:
    """Each product's department in the file ("" where none); a product given two is an error."""
    departments = np.full(len(product_labels), "", dtype=object)
    if "department" not in frame:
        return departments
    department, labels = labels_of(frame["department"])
    check_length(
        problems, "department", department, labels, Product._meta.get_field("department").max_length
    )
    rows = np.flatnonzero((product >= 0) & (department >= 0))
    products, first = np.unique(product[rows], return_index=True)
    first_row = np.full(len(product_labels), -1, dtype=np.int64)
    first_row[products] = rows[first]
    product_department = np.full(len(product_labels), -1, dtype=np.int64)
    product_department[products] = department[rows[first]]
    departments[products] = labels[product_department[products]]
    conflict = (
        (product >= 0) & (department >= 0) & (department != take(product_department, product, -1))
    )
    problems.add(
        conflict,
        "department",
        lambda index: (
            f"product {product_labels[product[index]]!r} is in department "
            f"{departments[product[index]]!r} on row {first_row[product[index]] + 1}"
        ),
    )
    return departments


def _check_duplicates(
    problems: Problems,
    store: np.ndarray,
    product: np.ndarray,
    day: np.ndarray,
    valid: np.ndarray,
    n_products: int,
) -> int:
    """Flag repeated (store, product, date) rows; returns the number of series in the file."""
    rows = np.flatnonzero(valid)
    if not len(rows):
        return 0
    series = store[rows] * n_products + product[rows]
    first_day = int(day[rows].min())
    n_days = int(day[rows].max()) - first_day + 1
    key = series * n_days + (day[rows] - first_day)
    repeated = pd.Series(key).duplicated(keep="first").to_numpy()
    if repeated.any():
        unique_keys, first = np.unique(key, return_index=True)
        first_row = np.full(len(store), -1, dtype=np.int64)
        first_row[rows[repeated]] = rows[first[np.searchsorted(unique_keys, key[repeated])]]
        mask = np.zeros(len(store), dtype=bool)
        mask[rows[repeated]] = True
        problems.add(
            mask,
            "date",
            lambda index: f"repeats store, product and date of row {first_row[index] + 1}",
        )
    return len(pd.unique(series))


def _check_known(
    problems: Problems,
    *,
    store: np.ndarray,
    store_labels: np.ndarray,
    product: np.ndarray,
    product_labels: np.ndarray,
    product_departments: np.ndarray,
    create_missing: bool,
    has_department_column: bool,
) -> None:
    """Stores and products the tenant lacks: rejected, or (when created) products need a department."""
    known_stores = _existing(Store, "code", store_labels)
    known_products = _existing(Product, "sku", product_labels)
    new_store = ~np.isin(store_labels, list(known_stores))
    new_product = ~np.isin(product_labels, list(known_products))
    if not create_missing:
        problems.add(take(new_store, store, False), "store", "unknown store")
        problems.add(take(new_product, product, False), "product", "unknown product")
        return
    lacking = new_product & (product_departments == "")
    reason = (
        "new product needs a department (add a department column)"
        if not has_department_column
        else "new product needs a department"
    )
    problems.add(
        take(lacking, product, False), "department" if has_department_column else "product", reason
    )


def _existing(model, key: str, labels: np.ndarray) -> dict[str, tuple]:
    """Existing rows of `model` whose `key` is among `labels`: key -> (id, name[, department])."""
    columns = ["id", "name"] + (["department"] if model is Product else [])
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {key}, {', '.join(columns)} FROM {model._meta.db_table} WHERE {key} = ANY(%s)",
            [storable(labels)],
        )
        return {row[0]: row[1:] for row in cursor.fetchall()}


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
def _write(sales: _ValidSales, *, chunk_rows: int) -> tuple[int, int, int, int]:
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
    existing = _existing(model, key, labels)
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
        existing |= _existing(model, key, labels[missing])
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
