"""Reads of the forecasting app: sales panels straight from PostgreSQL COPY, active series, dates."""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from django.db import connection
from django.db.models import Max, Min

from forecasting.models import Product, Sale, Store
from forecasting.panel import Panel

ACTIVE_SERIES_DAYS = 28
_EPOCH = dt.date(1970, 1, 1)
_DAY_COLUMNS = {
    "day": pa.int32(),
    "quantity": pa.float32(),
    "on_promotion": pa.float32(),
    "price": pa.float32(),
}
_BINARY_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_SERIES_ROW_HEAD = struct.Struct(">hiqiqiqi")  # fields; store_id, product_id, count; text length


def load_sales_panel(
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    departments: Sequence[str] | None = None,
    stores: Sequence[str] | None = None,
) -> Panel:
    """The tenant's daily sales from `start` to `end` (both included; default all) as a Panel,
    optionally only for some departments and store codes.

    The panel runs from the first to the last day with a sale in that range. A series absent on
    a day its store reported (any product) is a zero; a day its store did not report is NaN.
    """
    where, params = ["TRUE"], []
    if start is not None:
        where.append("s.date >= %s")
        params.append(start)
    if end is not None:
        where.append("s.date <= %s")
        params.append(end)
    if stores is not None:
        where.append(f"s.store_id IN (SELECT id FROM {Store._meta.db_table} WHERE code = ANY(%s))")
        params.append(list(stores))
    reported_where, reported_params = list(where), list(params)
    if departments is not None:
        where.append(
            f"s.product_id IN (SELECT id FROM {Product._meta.db_table} WHERE department = ANY(%s))"
        )
        params.append(list(departments))

    table = Sale._meta.db_table
    # One COPY row per series, its days as CSV text: PostgreSQL sends every COPY row as its own
    # message, and 10k messages cost far less than 7.3M.
    series_store_id, series_product_id, series_days, days_csv = _copy_series(
        f"SELECT s.store_id, s.product_id, count(*), string_agg(concat_ws(',', "
        f"s.date - DATE '1970-01-01', s.quantity, s.on_promotion::int, "
        f"coalesce(s.price::text, '')), E'\\n') || E'\\n' "
        f"FROM {table} s WHERE {' AND '.join(where)} GROUP BY s.store_id, s.product_id",
        params,
    )
    if not len(series_days):
        return Panel.empty()
    rows = pa_csv.read_csv(
        pa.py_buffer(days_csv),
        read_options=pa_csv.ReadOptions(column_names=list(_DAY_COLUMNS)),
        convert_options=pa_csv.ConvertOptions(column_types=_DAY_COLUMNS),
    )
    day = rows.column("day").to_numpy().astype(np.int64)
    first_day, last_day = int(day.min()), int(day.max())
    n_days = last_day - first_day + 1

    # Series in the order Panel.from_frame gives them: by store code, then by SKU.
    store_rows = list(Store.objects.order_by("code").values_list("id", "code"))
    product_rows = list(Product.objects.order_by("sku").values_list("id", "sku", "department"))
    store_index = pd.Index([pk for pk, _ in store_rows])
    store_position = store_index.get_indexer(series_store_id)
    product_position = pd.Index([pk for pk, _, _ in product_rows]).get_indexer(series_product_id)
    order = np.lexsort((product_position, store_position))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    series_store = store_position[order]
    series_product = product_position[order]
    series = np.repeat(rank, series_days)

    store_reported = np.zeros((len(store_rows), n_days), dtype=bool)
    if departments is None:
        store_reported[np.repeat(store_position, series_days), day - first_day] = True
    else:
        # A store that reported only other departments on a day still reported that day: these
        # series sold zero there, they are not unknown.
        reported = _copy_out(
            f"SELECT DISTINCT s.store_id, s.date - DATE '1970-01-01' FROM {table} s "
            f"WHERE {' AND '.join(reported_where)}",
            reported_params,
            {"store_id": pa.int64(), "day": pa.int32()},
        )
        reported_day = reported.column("day").to_numpy().astype(np.int64)
        in_range = (reported_day >= first_day) & (reported_day <= last_day)
        store_reported[
            store_index.get_indexer(reported.column("store_id").to_numpy()[in_range]),
            reported_day[in_range] - first_day,
        ] = True

    cell = series * n_days + (day - first_day)
    quantity = np.where(store_reported[series_store], np.float32(0), np.float32(np.nan))
    quantity.reshape(-1)[cell] = rows.column("quantity").to_numpy()
    on_promotion = np.zeros(quantity.shape, dtype=np.float32)
    on_promotion.reshape(-1)[cell] = rows.column("on_promotion").to_numpy()
    price = np.full(quantity.shape, np.nan, dtype=np.float32)
    price.reshape(-1)[cell] = rows.column("price").to_numpy(zero_copy_only=False)

    store_codes = np.array([code for _, code in store_rows], dtype=object)
    product_skus = np.array([sku for _, sku, _ in product_rows], dtype=object)
    product_departments = np.array([dept for _, _, dept in product_rows], dtype=object)
    return Panel(
        stores=store_codes[series_store],
        products=product_skus[series_product],
        departments=product_departments[series_product],
        dates=pd.date_range(
            pd.Timestamp(_EPOCH + dt.timedelta(days=first_day)),
            periods=n_days,
            freq="D",
            name="date",
        ),
        quantity=quantity,
        on_promotion=on_promotion,
        price=price,
    )


def active_series(*, as_of: dt.date, days: int = ACTIVE_SERIES_DAYS) -> pd.DataFrame:
    """Series that sold anything in the `days` days up to and including `as_of`: a frame of
    store_id, product_id, store (code), product (SKU), department, ordered by store and SKU."""
    rows = (
        Sale.objects.filter(
            date__gt=as_of - dt.timedelta(days=days), date__lte=as_of, quantity__gt=0
        )
        .values_list("store_id", "product_id", "store__code", "product__sku", "product__department")
        .distinct()
        .order_by("store__code", "product__sku")
    )
    return pd.DataFrame(
        list(rows), columns=["store_id", "product_id", "store", "product", "department"]
    )


def sales_date_range() -> tuple[dt.date, dt.date] | None:
    """First and last day with a sale, or None when the tenant has no sales."""
    bounds = Sale.objects.aggregate(first=Min("date"), last=Max("date"))
    if bounds["first"] is None:
        return None
    return bounds["first"], bounds["last"]


def _copy_to_bytes(query: str, params: list, *, copy_format: str) -> bytearray:
    """Everything `COPY (query) TO STDOUT` sends in `copy_format`, in one buffer."""
    data = bytearray()
    # The raw psycopg cursor: Django's debug wrapper (DEBUG=True) takes no COPY parameters.
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT {copy_format})", params) as copy,
    ):
        for message in copy:
            data += message
    return data


def _copy_out(query: str, params: list, columns: dict[str, pa.DataType]) -> pa.Table:
    """Rows of `query` fetched with COPY ... TO STDOUT (CSV) and parsed by pyarrow."""
    # One message per row: meant for small results (see _copy_series for big ones).
    data = _copy_to_bytes(query, params, copy_format="CSV")
    if not data:
        return pa.table({name: pa.array([], type=kind) for name, kind in columns.items()})
    return pa_csv.read_csv(
        pa.py_buffer(data),
        read_options=pa_csv.ReadOptions(column_names=list(columns)),
        convert_options=pa_csv.ConvertOptions(column_types=columns),
    )


def _copy_series(query: str, params: list) -> tuple[np.ndarray, np.ndarray, np.ndarray, bytes]:
    """Rows (store_id bigint, product_id bigint, count bigint, text) of `query`, fetched with
    binary COPY; returns the three integer columns and all the texts joined."""
    data = _copy_to_bytes(query, params, copy_format="BINARY")
    if not data.startswith(_BINARY_COPY_SIGNATURE):
        raise ValueError("unexpected binary COPY header")
    view = memoryview(data)
    header_length = 19 + int.from_bytes(view[15:19], "big")
    position = header_length
    store_ids, product_ids, counts, texts = [], [], [], []
    head = _SERIES_ROW_HEAD
    while int.from_bytes(view[position : position + 2], "big", signed=True) != -1:
        _, _, store_id, _, product_id, _, count, length = head.unpack_from(view, position)
        position += head.size
        store_ids.append(store_id)
        product_ids.append(product_id)
        counts.append(count)
        texts.append(view[position : position + length])
        position += length
    return (
        np.array(store_ids, dtype=np.int64),
        np.array(product_ids, dtype=np.int64),
        np.array(counts, dtype=np.int64),
        b"".join(texts),
    )
