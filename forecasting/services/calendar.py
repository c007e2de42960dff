"""Promotion calendar import: validate a whole CSV/Parquet file (or frame) of planned promotions
and prices, then add its rows in one transaction (the admin, the API and the command share it).

A row names a store (blank or `*`: every store), a product or a department (every product of
it), its first and last day, and optionally a discount in % or a planned price. `known_since`
says when the plan became known (default: the moment of the import); forecasts made before then
never see it, which keeps backtests honest.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import get_public_schema_name

from forecasting.models import PlannedPromotion, Product, Store
from forecasting.services.import_files import (
    ImportRejected,
    Problems,
    Source,
    check_no_nul,
    days_of,
    factorize,
    labels_of,
    numbers_of,
    read_source,
    storable,
    take,
    text_of,
)

REQUIRED_COLUMNS = ("start_date", "end_date")
OPTIONAL_COLUMNS = ("store", "product", "department", "discount_pct", "price", "known_since")
# In the order a file usually has them (problems of one row are listed in this order).
COLUMNS = ("store", "product", "department", "start_date", "end_date") + OPTIONAL_COLUMNS[3:]
TEXT_COLUMNS = ("store", "product", "department")
ALL_STORES = "*"
MAX_PRICE = 10**10  # DecimalField(max_digits=12, decimal_places=2)

# The name callers of the calendar import know its refusal by.
CalendarImportError = ImportRejected


@dataclass(frozen=True)
class CalendarImportSummary:
    """What one calendar import wrote."""

    rows: int
    added: int
    already_known: int
    date_min: dt.date | None
    date_max: dt.date | None

    def lines(self) -> list[str]:
        return [
            f"Planned promotions: {self.rows:,} ({self.added:,} added, "
            f"{self.already_known:,} already known)",
            f"Days: {self.date_min} to {self.date_max}",
        ]


def read_calendar_file(source: Source, file_format: str | None = None) -> pd.DataFrame:
    """The rows of a calendar file (or frame), columns normalised, not yet validated: the
    calendar import validates them when they are loaded."""
    return read_source(source, file_format, columns=COLUMNS, required=REQUIRED_COLUMNS)


def import_promotion_calendar(
    *, source: Source, file_format: str | None = None, known_since: dt.datetime | None = None
) -> CalendarImportSummary:
    """Validate the whole file, then add its planned promotions in one transaction; rows the
    tenant already has (same plan, known from the same moment) are left as they are. Rows
    without `known_since` are known from `known_since` (default now). Returns a summary;
    raises CalendarImportError (and writes nothing) when any row is at fault."""
    if connection.schema_name == get_public_schema_name():
        raise RuntimeError("A promotion calendar belongs to a tenant: enter its schema first.")
    now = timezone.now()
    frame = read_source(source, file_format, columns=COLUMNS, required=REQUIRED_COLUMNS)
    rows = _validate(frame, default_known_since=known_since or now, now=now)
    added = _write(rows)
    return CalendarImportSummary(
        rows=len(rows),
        added=added,
        already_known=len(rows) - added,
        date_min=min(row.start_date for row in rows),
        date_max=max(row.end_date for row in rows),
    )


def _validate(
    frame: pd.DataFrame, *, default_known_since: dt.datetime, now: dt.datetime
) -> list[PlannedPromotion]:
    problems = Problems(frame, COLUMNS)
    check_no_nul(problems, frame, TEXT_COLUMNS)
    n_rows = len(frame)

    start, missing_start, bad_start = days_of(frame["start_date"])
    end, missing_end, bad_end = days_of(frame["end_date"])
    for column, missing, bad in (
        ("start_date", missing_start, bad_start),
        ("end_date", missing_end, bad_end),
    ):
        problems.add(missing, column, "missing value")
        problems.add(bad, column, "not a date (expected YYYY-MM-DD)")
    dates_known = ~(missing_start | bad_start | missing_end | bad_end)
    problems.add(dates_known & (end < start), "end_date", "ends before its start date")

    store_ids = _store_ids(problems, frame, n_rows)
    product_ids, departments = _products(problems, frame, n_rows)
    discount = _optional_number(problems, frame, "discount_pct", low=0.0, high=100.0)
    price = _optional_number(problems, frame, "price", low=0.0, high=MAX_PRICE)
    known_since = _known_since(problems, frame, default=default_known_since, now=now)
    keys = pd.DataFrame(
        {
            "store": store_ids,
            "product": product_ids,
            "department": np.where(product_ids >= 0, "", departments),
            "start": start,
            "end": end,
            "known_since": known_since,
        }
    )
    # Only rows whose key is valid can repeat another: a key with an unknown part is reported.
    valid_key = dates_known & (store_ids != -2) & (product_ids != -2)
    valid = keys[valid_key].reset_index()
    repeated_rows = valid["index"][valid.duplicated(list(keys.columns), keep="first")]
    if len(repeated_rows):
        first_of = valid.groupby(list(keys.columns), sort=False)["index"].transform("min")
        first_row = dict(zip(valid["index"], first_of, strict=True))
        repeated = np.zeros(n_rows, dtype=bool)
        repeated[repeated_rows.to_numpy()] = True
        problems.add(
            repeated,
            "start_date",
            lambda index: f"repeats the plan of row {first_row[index] + 1}",
        )
    problems.raise_if_any()

    epoch = dt.date(1970, 1, 1)
    return [
        PlannedPromotion(
            store_id=None if store_ids[i] < 0 else int(store_ids[i]),
            product_id=None if product_ids[i] < 0 else int(product_ids[i]),
            department="" if product_ids[i] >= 0 else departments[i],
            start_date=epoch + dt.timedelta(days=int(start[i])),
            end_date=epoch + dt.timedelta(days=int(end[i])),
            discount_pct=None if np.isnan(discount[i]) else float(discount[i]),
            price=None if np.isnan(price[i]) else round(float(price[i]), 2),
            known_since=known_since[i],
        )
        for i in range(n_rows)
    ]


def _store_ids(problems: Problems, frame: pd.DataFrame, n_rows: int) -> np.ndarray:
    """Store id per row; -1 for every store (blank or `*`). Unknown codes are errors."""
    if "store" not in frame:
        return np.full(n_rows, -1, dtype=np.int64)
    codes, labels = labels_of(frame["store"])
    known = dict(Store.objects.filter(code__in=storable(labels)).values_list("code", "id"))
    ids = np.array([known.get(label, -2) for label in labels], dtype=np.int64)
    ids[labels == ALL_STORES] = -1
    per_row = take(ids, codes, -1)
    problems.add(per_row == -2, "store", "unknown store")
    return per_row


def _products(
    problems: Problems, frame: pd.DataFrame, n_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """Product id per row (-1 where the row names a department instead) and department per
    row; a row needs one of them, and names only what the tenant has."""
    product_ids = np.full(n_rows, -1, dtype=np.int64)
    product_departments = np.full(n_rows, "", dtype=object)
    if "product" in frame:
        codes, labels = labels_of(frame["product"])
        known = {
            sku: (pk, department)
            for sku, pk, department in Product.objects.filter(sku__in=storable(labels)).values_list(
                "sku", "id", "department"
            )
        }
        ids = np.array([known.get(label, (-2, ""))[0] for label in labels], dtype=np.int64)
        product_ids = take(ids, codes, -1)
        problems.add(product_ids == -2, "product", "unknown product")
        label_departments = np.array([known.get(label, (0, ""))[1] for label in labels], object)
        product_departments = take(label_departments, codes, "")
    departments = np.full(n_rows, "", dtype=object)
    if "department" in frame:
        codes, labels = labels_of(frame["department"])
        departments = take(np.asarray(labels, dtype=object), codes, "")
        existing = set(
            Product.objects.filter(department__in=storable(labels)).values_list(
                "department", flat=True
            )
        )
        unknown = np.array([label not in existing for label in labels], dtype=bool)
        problems.add(
            take(unknown, codes, False) & (product_ids == -1), "department", "unknown department"
        )
        problems.add(
            (product_ids >= 0) & (departments != "") & (departments != product_departments),
            "department",
            "not the product's department",
        )
    no_target = (product_ids == -1) & (departments == "")
    problems.add(no_target, "product", "needs a product or a department")
    return product_ids, departments


def _optional_number(
    problems: Problems, frame: pd.DataFrame, column: str, *, low: float, high: float
) -> np.ndarray:
    """The column as floats (NaN where blank or absent); out of [low, high) is an error."""
    if column not in frame:
        return np.full(len(frame), np.nan)
    values, _, bad = numbers_of(frame[column])
    problems.add(bad, column, "not a number")
    with np.errstate(invalid="ignore"):
        problems.add(values < low, column, f"negative {column.replace('_pct', '')}")
        problems.add(values >= high, column, f"not below {high:,g}")
    return values


def _known_since(
    problems: Problems, frame: pd.DataFrame, *, default: dt.datetime, now: dt.datetime
) -> list[dt.datetime]:
    """When each row became known: a date (its midnight, UTC) or a date and time; blank is
    `default`. A moment after the import is an error (nobody knows the future's plans)."""
    n_rows = len(frame)
    if "known_since" not in frame:
        return [default] * n_rows
    codes, uniques = factorize(frame["known_since"])
    if uniques.inferred_type in ("string", "empty"):
        text = text_of(uniques)
        parsed = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
        blank = np.asarray(text == "", dtype=bool)
    else:
        parsed = pd.to_datetime(uniques, errors="coerce", utc=True)
        blank = np.zeros(len(uniques), dtype=bool)
    parsed = pd.DatetimeIndex(parsed)
    bad = np.asarray(parsed.isna(), dtype=bool) & ~blank
    later = np.asarray(parsed > pd.Timestamp(now), dtype=bool)
    problems.add(take(bad, codes, False), "known_since", "not a date or date and time")
    problems.add(take(later, codes, False), "known_since", "later than now")
    moments = [
        default if blank[i] or bad[i] else parsed[i].to_pydatetime() for i in range(len(uniques))
    ]
    return [default if code < 0 else moments[code] for code in codes]


@transaction.atomic
def _write(rows: list[PlannedPromotion]) -> int:
    """Add the rows the tenant lacks; returns how many were added."""
    before = PlannedPromotion.objects.count()
    PlannedPromotion.objects.bulk_create(rows, batch_size=5000, ignore_conflicts=True)
    return PlannedPromotion.objects.count() - before
