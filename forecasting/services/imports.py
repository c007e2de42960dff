"""Sales import: validate a whole CSV/Parquet file (or frame), then upsert it with COPY in one transaction."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pa_parquet
from django.db import connection, transaction
from django_tenants.utils import get_public_schema_name

from forecasting.models import Product, Sale, Store

REQUIRED_COLUMNS = ("date", "store", "product", "quantity")
OPTIONAL_COLUMNS = ("on_promotion", "price", "department", "store_name", "product_name")
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
FILE_FORMATS = ("csv", "parquet")

MAX_LISTED_ERRORS = 20
DEFAULT_CHUNK_ROWS = 250_000
MAX_QUANTITY = 2**31 - 1  # PostgreSQL integer
MAX_PRICE = 10**10  # DecimalField(max_digits=12, decimal_places=2)
PROMOTION_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}

Source = str | os.PathLike | BinaryIO | pd.DataFrame

_EPOCH_2000 = 10_957  # days from 1970-01-01 to 2000-01-01, PostgreSQL's binary date origin
_TEMP_TABLE = "pg_temp.forecasting_sale_import"  # never a tenant table of that name


@dataclass(frozen=True)
class RowError:
    """One problem in an import file; `row` counts data rows from 1 (a CSV's line `row + 1`)."""

    row: int | None  # None for a problem with the whole file (a missing column)
    column: str | None
    value: str | None
    reason: str

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row is not None else "file"
        column = f", column {self.column!r}" if self.column else ""
        value = f" (value {self.value!r})" if self.value is not None else ""
        return f"{where}{column}: {self.reason}{value}"

    def to_dict(self) -> dict:
        return {"row": self.row, "column": self.column, "value": self.value, "reason": self.reason}


class SalesImportError(Exception):
    """An import file was rejected; nothing was written.

    `errors` lists the first problems in row order (at most MAX_LISTED_ERRORS); `error_count`
    counts them all and `rows_at_fault` the rows with at least one.
    """

    def __init__(
        self,
        message: str,
        *,
        errors: list[RowError],
        error_count: int | None = None,
        rows_at_fault: int = 0,
    ):
        super().__init__(message)
        self.message = message
        self.errors = errors
        self.error_count = len(errors) if error_count is None else error_count
        self.rows_at_fault = rows_at_fault

    def to_dict(self) -> dict:
        return {
            "message": self.message,
            "error_count": self.error_count,
            "rows_at_fault": self.rows_at_fault,
            "errors": [error.to_dict() for error in self.errors],
        }


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
    frame = _read_source(source, file_format)
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


# -- reading ---------------------------------------------------------------------------------


def _file_error(message: str, *, column: str | None = None) -> SalesImportError:
    return SalesImportError(
        message, errors=[RowError(row=None, column=column, value=None, reason=message)]
    )


def read_sales_file(source: Source, file_format: str | None = None) -> pd.DataFrame:
    """The rows of a sales file (or frame), columns normalised, not yet validated: the sales
    import validates them when they are loaded."""
    return _read_source(source, file_format)


def _read_source(source: Source, file_format: str | None) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return _normalise_columns(source)
    file_format = (file_format or _format_from_name(source)).lower()
    if file_format == "csv":
        frame = _read_csv(source)
    elif file_format == "parquet":
        frame = _read_parquet(source)
    else:
        raise _file_error(f"unsupported file format {file_format!r}: use csv or parquet")
    return _normalise_columns(frame)


def _format_from_name(source: str | os.PathLike | BinaryIO) -> str:
    name = str(source) if isinstance(source, str | os.PathLike) else getattr(source, "name", "")
    suffix = Path(str(name or "")).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise _file_error(
        f"cannot tell the format of {name or 'the upload'!r}: name it .csv or .parquet"
    )


def _read_csv(source: str | os.PathLike | BinaryIO) -> pd.DataFrame:
    """Every column as text, so that the validation can name each bad value as written."""
    data = Path(source).read_bytes() if isinstance(source, str | os.PathLike) else source.read()
    if isinstance(data, str):
        data = data.encode()
    header_end = data.find(b"\n")
    header = data[: header_end if header_end >= 0 else len(data)]
    try:
        names = next(csv.reader([header.decode("utf-8-sig").rstrip("\r")]), [])
    except UnicodeDecodeError:
        raise _file_error("the header line is not UTF-8 text") from None
    if not any(name.strip() for name in names):
        raise _file_error("the file is empty or has no header line")

    bad_rows: list[RowError] = []

    def on_invalid_row(row) -> str:
        bad_rows.append(
            RowError(
                row=row.number - 1 if row.number is not None else None,
                column=None,
                value=row.text[:200],
                reason=f"has {row.actual_columns} fields, the header has {row.expected_columns}",
            )
        )
        return "skip"

    def read(use_threads: bool) -> pa.Table:
        return pa_csv.read_csv(
            pa.py_buffer(data),
            read_options=pa_csv.ReadOptions(use_threads=use_threads),
            parse_options=pa_csv.ParseOptions(
                newlines_in_values=True, invalid_row_handler=on_invalid_row
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )

    try:
        table = read(use_threads=True)
        if bad_rows:
            # Threaded parsing does not number rows; read again (only on this error path).
            bad_rows.clear()
            read(use_threads=False)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise _file_error(f"not a readable CSV file: {exc}") from None
    if bad_rows:
        raise SalesImportError(
            f"{len(bad_rows):,} rows do not have one field per column; nothing was imported",
            errors=bad_rows[:MAX_LISTED_ERRORS],
            error_count=len(bad_rows),
            rows_at_fault=len(bad_rows),
        )
    return table.to_pandas()


def _read_parquet(source: str | os.PathLike | BinaryIO) -> pd.DataFrame:
    try:
        if not isinstance(source, str | os.PathLike):
            source = io.BytesIO(source.read())
        return pa_parquet.read_table(source).to_pandas()
    except (pa.ArrowException, OSError) as exc:
        raise _file_error(f"not a readable Parquet file: {exc}") from None


def _normalise_columns(frame: pd.DataFrame) -> pd.DataFrame:
    names = [str(name).strip().lstrip("\ufeff").strip().lower() for name in frame.columns]
    repeated = sorted({name for name in names if names.count(name) > 1 and name in COLUMNS})
    errors = [
        RowError(row=None, column=name, value=None, reason="column appears more than once")
        for name in repeated
    ] + [
        RowError(row=None, column=name, value=None, reason="required column is missing")
        for name in REQUIRED_COLUMNS
        if name not in names
    ]
    if errors:
        raise SalesImportError(
            "; ".join(f"{error.column}: {error.reason}" for error in errors),
            errors=errors,
        )
    if len(frame) == 0:
        raise _file_error("the file has no data rows")
    frame = frame.set_axis(names, axis=1)
    return frame[[name for name in COLUMNS if name in names]].reset_index(drop=True)


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
    store_names: np.ndarray  # per store label, "" when the file gives none
    product_names: np.ndarray
    product_departments: np.ndarray
    n_series: int = 0


@dataclass
class _Problems:
    """Row problems found by vectorised checks; only the first few are turned into text."""

    frame: pd.DataFrame
    checks: list[tuple[np.ndarray, str, Callable[[int], str]]] = field(default_factory=list)

    def add(self, mask: np.ndarray, column: str, reason: str | Callable[[int], str]) -> None:
        if mask.any():
            self.checks.append((mask, column, reason if callable(reason) else lambda _: reason))

    def raise_if_any(self) -> None:
        if not self.checks:
            return
        column_order = {name: position for position, name in enumerate(COLUMNS)}
        listed = []
        for mask, column, reason in self.checks:
            for index in np.flatnonzero(mask)[:MAX_LISTED_ERRORS]:
                listed.append((int(index), column_order[column], column, reason))
        listed.sort(key=lambda item: item[:2])
        errors = [
            RowError(
                row=index + 1,
                column=column,
                value=_shown(self.frame[column].iloc[index]),
                reason=reason(index),
            )
            for index, _, column, reason in listed[:MAX_LISTED_ERRORS]
        ]
        error_count = sum(int(mask.sum()) for mask, _, _ in self.checks)
        rows_at_fault = int(np.logical_or.reduce([mask for mask, _, _ in self.checks]).sum())
        raise SalesImportError(
            f"{rows_at_fault:,} of {len(self.frame):,} rows have errors "
            f"({error_count:,} in all); nothing was imported",
            errors=errors,
            error_count=error_count,
            rows_at_fault=rows_at_fault,
        )


def _validate(frame: pd.DataFrame, *, create_missing: bool) -> _ValidSales:
    problems = _Problems(frame)
    n_rows = len(frame)

    store, store_labels = _labels(frame["store"])
    product, product_labels = _labels(frame["product"])
    problems.add(store < 0, "store", "missing value")
    problems.add(product < 0, "product", "missing value")
    _check_length(problems, "store", store, store_labels, Store._meta.get_field("code").max_length)
    _check_length(
        problems, "product", product, product_labels, Product._meta.get_field("sku").max_length
    )

    day, missing_day, bad_day = _days(frame["date"])
    problems.add(missing_day, "date", "missing value")
    problems.add(bad_day, "date", "not a date (expected YYYY-MM-DD)")

    quantity, missing_quantity, not_number = _numbers(frame["quantity"])
    problems.add(missing_quantity, "quantity", "missing value")
    problems.add(not_number, "quantity", "not a number")
    with np.errstate(invalid="ignore"):
        problems.add(quantity < 0, "quantity", "negative quantity")
        problems.add(np.isfinite(quantity) & (quantity % 1 != 0), "quantity", "not a whole number")
        problems.add(quantity > MAX_QUANTITY, "quantity", f"larger than {MAX_QUANTITY:,}")

    on_promotion = None
    if "on_promotion" in frame:
        on_promotion, bad_promotion = _flags(frame["on_promotion"])
        problems.add(bad_promotion, "on_promotion", "not true/false, 1/0 or yes/no")

    price_cents = price_known = None
    if "price" in frame:
        price, _, bad_price = _numbers(frame["price"])
        problems.add(bad_price, "price", "not a number")
        with np.errstate(invalid="ignore"):
            problems.add(price < 0, "price", "negative price")
            problems.add(price >= MAX_PRICE, "price", f"not below {MAX_PRICE:,}")
        price_known = ~np.isnan(price)
        price_cents = np.rint(np.where(price_known, price, 0) * 100).astype(np.int64)

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
        store_names=store_names,
        product_names=product_names,
        product_departments=product_departments,
        n_series=n_series,
    )


def _shown(value) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp | np.datetime64):
        return str(pd.Timestamp(value))
    return str(value)[:200]


def _factorize(column: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Codes (-1 for missing) and distinct values: checks then run once per distinct value."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    return codes.astype(np.int64, copy=False), pd.Index(uniques)


def _take(values: np.ndarray, codes: np.ndarray, missing) -> np.ndarray:
    """values[codes], with `missing` where a code is -1."""
    return np.append(values, np.array([missing], dtype=values.dtype))[codes]


def _text(uniques: pd.Index) -> pd.Index:
    return pd.Index(uniques.astype(str), dtype=object).str.strip()


def _labels(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Per-row label codes (-1 for missing or blank) and the labels, stripped of spaces."""
    codes, uniques = _factorize(column)
    compact, labels = pd.factorize(np.asarray(_text(uniques), dtype=object))
    labels = np.asarray(labels, dtype=object)
    blank = labels == ""
    if blank.any():
        renumber = np.cumsum(~blank) - 1
        renumber[blank] = -1
        compact = renumber[compact]
        labels = labels[~blank]
    return _take(compact.astype(np.int64), codes, -1), labels


def _check_length(
    problems: _Problems, column: str, codes: np.ndarray, labels: np.ndarray, max_length: int
) -> None:
    too_long = np.asarray(pd.Index(labels, dtype=object).str.len() > max_length, dtype=bool)
    if too_long.any():
        problems.add(_take(too_long, codes, False), column, f"longer than {max_length} characters")


def _days(column: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Days since 1970-01-01 of each row, and the masks of missing and unparseable dates."""
    codes, uniques = _factorize(column)
    if uniques.inferred_type in ("string", "empty"):
        text = _text(uniques)
        parsed = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
        blank = np.asarray(text == "", dtype=bool)
    else:
        parsed = pd.to_datetime(uniques, errors="coerce")
        blank = np.zeros(len(uniques), dtype=bool)
    if getattr(parsed, "tz", None) is not None:
        parsed = parsed.tz_localize(None)
    parsed = pd.DatetimeIndex(parsed)
    # A timestamp is accepted only at midnight: a time of day means the file is not daily sales.
    not_a_day = parsed.isna() | (parsed != parsed.normalize())
    days = parsed.normalize().to_numpy("datetime64[D]").astype(np.int64)
    days[not_a_day] = 0
    missing = (codes < 0) | _take(blank, codes, False)
    bad = _take(np.asarray(not_a_day, dtype=bool) & ~blank, codes, False)
    return _take(days, codes, 0), missing, bad


def _numbers(column: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row as float (NaN when missing or bad), and the masks of missing and non-numeric values."""
    dtype = column.dtype
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        missing = np.isnan(values)
        bad = np.isinf(values)
        values[bad] = np.nan
        return values, missing, bad
    codes, uniques = _factorize(column)
    text = _text(uniques)
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan, copy=True
    )
    numbers[np.isinf(numbers)] = np.nan
    blank = np.asarray(text == "", dtype=bool)
    values = _take(numbers, codes, np.nan)
    missing = (codes < 0) | _take(blank, codes, False)
    return values, missing, np.isnan(values) & ~missing


def _flags(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """on_promotion as booleans (blank = false), and the mask of values that are not a flag."""
    if pd.api.types.is_bool_dtype(column.dtype):
        return column.fillna(False).to_numpy(dtype=bool), np.zeros(len(column), dtype=bool)
    codes, uniques = _factorize(column)
    text = _text(uniques).str.lower()
    if pd.api.types.is_numeric_dtype(uniques.dtype):
        text = pd.Index(["1" if value == 1 else "0" if value == 0 else "?" for value in uniques])
    flag = text.map(lambda word: PROMOTION_WORDS.get(word, False))
    known = np.asarray(text.isin(list(PROMOTION_WORDS)) | (text == ""), dtype=bool)
    values = _take(np.asarray(flag, dtype=bool), codes, False)
    return values, ~_take(known, codes, True)


def _names_per_label(
    problems: _Problems, frame: pd.DataFrame, column: str, owner: np.ndarray, n_owners: int
) -> np.ndarray:
    """The first non-blank name given for each store/product ("" where none)."""
    names = np.full(n_owners, "", dtype=object)
    if column not in frame:
        return names
    name, labels = _labels(frame[column])
    model, field_name = (Store, "name") if column == "store_name" else (Product, "name")
    _check_length(problems, column, name, labels, model._meta.get_field(field_name).max_length)
    rows = np.flatnonzero((owner >= 0) & (name >= 0))
    owners, first = np.unique(owner[rows], return_index=True)
    names[owners] = labels[name[rows[first]]]
    return names


def _departments(
    problems: _Problems, frame: pd.DataFrame, product: np.ndarray, product_labels: np.ndarray
) -> np.ndarray:
    """Each product's department in the file ("" where none); a product given two is an error."""
    departments = np.full(len(product_labels), "", dtype=object)
    if "department" not in frame:
        return departments
    department, labels = _labels(frame["department"])
    _check_length(
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
        (product >= 0) & (department >= 0) & (department != _take(product_department, product, -1))
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
    problems: _Problems,
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
    problems: _Problems,
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
        problems.add(_take(new_store, store, False), "store", "unknown store")
        problems.add(_take(new_product, product, False), "product", "unknown product")
        return
    lacking = new_product & (product_departments == "")
    reason = (
        "new product needs a department (add a department column)"
        if not has_department_column
        else "new product needs a department"
    )
    problems.add(
        _take(lacking, product, False), "department" if has_department_column else "product", reason
    )


def _existing(model, key: str, labels: np.ndarray) -> dict[str, tuple]:
    """Existing rows of `model` whose `key` is among `labels`: key -> (id, name[, department])."""
    columns = ["id", "name"] + (["department"] if model is Product else [])
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {key}, {', '.join(columns)} FROM {model._meta.db_table} WHERE {key} = ANY(%s)",
            [list(labels)],
        )
        return {row[0]: row[1:] for row in cursor.fetchall()}


# -- writing ---------------------------------------------------------------------------------


# One row of binary COPY into the temp table: a field count, then (length, value) per field.
_COPY_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("store_length", ">i4"),
        ("store_id", ">i8"),
        ("product_length", ">i4"),
        ("product_id", ">i8"),
        ("date_length", ">i4"),
        ("date", ">i4"),
        ("quantity_length", ">i4"),
        ("quantity", ">i4"),
        ("promotion_length", ">i4"),
        ("on_promotion", "u1"),
        ("cents_length", ">i4"),
        ("price_cents", ">i8"),
        ("known_length", ">i4"),
        ("price_known", "u1"),
    ]
)
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
_COPY_TRAILER = b"\xff\xff"


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
    rows = np.zeros(sales.n_rows, dtype=_COPY_ROW)
    rows["fields"] = 7
    for name, size in (
        ("store", 8),
        ("product", 8),
        ("date", 4),
        ("quantity", 4),
        ("promotion", 1),
        ("cents", 8),
        ("known", 1),
    ):
        rows[f"{name}_length"] = size
    rows["store_id"] = store_ids[sales.store]
    rows["product_id"] = product_ids[sales.product]
    rows["date"] = sales.day - _EPOCH_2000
    rows["quantity"] = sales.quantity
    if sales.on_promotion is not None:
        rows["on_promotion"] = sales.on_promotion
    if sales.price_cents is not None:
        rows["price_cents"] = sales.price_cents
        rows["price_known"] = sales.price_known
    # Key order keeps the unique index's pages hot and takes row locks in one order, so that
    # two imports touching the same series cannot deadlock.
    rows = rows[np.lexsort((rows["date"], rows["product_id"], rows["store_id"]))]

    table = Sale._meta.db_table
    replaced = ["quantity = EXCLUDED.quantity"]
    if sales.on_promotion is not None:
        replaced.append("on_promotion = EXCLUDED.on_promotion")
    if sales.price_cents is not None:
        replaced.append("price = EXCLUDED.price")
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {_TEMP_TABLE}")
        cursor.execute(
            f"CREATE TABLE {_TEMP_TABLE} (store_id bigint, product_id bigint, date date, "
            "quantity integer, on_promotion boolean, price_cents bigint, price_known boolean) "
            "ON COMMIT DROP"
        )
        with cursor.copy(f"COPY {_TEMP_TABLE} FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(_COPY_SIGNATURE)
            for start in range(0, len(rows), max(chunk_rows, 1)):
                copy.write(rows[start : start + chunk_rows].tobytes())
            copy.write(_COPY_TRAILER)
        # xmax is 0 only on a freshly inserted row version: it tells inserts from replacements.
        cursor.execute(
            f"WITH upserted AS ("
            f"INSERT INTO {table} (store_id, product_id, date, quantity, on_promotion, price) "
            f"SELECT store_id, product_id, date, quantity, on_promotion, "
            f"CASE WHEN price_known THEN price_cents / 100.0 END FROM {_TEMP_TABLE} "
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
