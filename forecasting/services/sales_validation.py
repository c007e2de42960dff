"""Sales import, first half: check every row of a sales file and turn it into arrays to write."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db import connection

from forecasting.models import Product, Store
from forecasting.services.import_files import (
    Problems,
    check_length,
    check_no_nul,
    days_of,
    flags_of,
    labels_of,
    numbers_of,
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

MAX_QUANTITY = 2**31 - 1  # PostgreSQL integer
MAX_PRICE = 10**10  # DecimalField(max_digits=12, decimal_places=2)


@dataclass
class ValidSales:
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


def validate_sales(frame: pd.DataFrame, *, create_missing: bool) -> ValidSales:
    """The whole frame checked as arrays; raises ImportRejected listing every row at fault."""
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
    return ValidSales(
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
    known_stores = existing_rows(Store, "code", store_labels)
    known_products = existing_rows(Product, "sku", product_labels)
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


def existing_rows(model, key: str, labels: np.ndarray) -> dict[str, tuple]:
    """Existing rows of `model` whose `key` is among `labels`: key -> (id, name[, department])."""
    columns = ["id", "name"] + (["department"] if model is Product else [])
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {key}, {', '.join(columns)} FROM {model._meta.db_table} WHERE {key} = ANY(%s)",
            [storable(labels)],
        )
        return {row[0]: row[1:] for row in cursor.fetchall()}
