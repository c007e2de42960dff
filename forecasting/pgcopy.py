"""PostgreSQL COPY in and out: every bulk read and write of sales, calendars and forecasts.

Binary COPY (PGCOPY) rows are numpy structured arrays: a field count, then (length, value) per
field, big-endian. Text COPY goes through pyarrow's CSV reader. The raw psycopg cursor is used
throughout, because Django's debug cursor wrapper (DEBUG=True) takes no COPY parameters.
"""

from __future__ import annotations

import datetime as dt
import io
import struct
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from django.db import connection

from config.read_cache import note_write

PGCOPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
# The signature, a zero flags field and a zero-length header extension.
PGCOPY_HEADER = PGCOPY_SIGNATURE + b"\x00" * 8
PGCOPY_TRAILER = b"\xff\xff"
# Days from 1970-01-01 to 2000-01-01: PostgreSQL's binary dates count from 2000.
EPOCH_2000_DAYS = 10_957
EPOCH = dt.date(1970, 1, 1)

# Per-field value types of binary rows, by PostgreSQL type.
BINARY_TYPES = {
    "bigint": ">i8",
    "integer": ">i4",
    "date": ">i4",
    "boolean": "u1",
    "double precision": ">f8",
}
_SERIES_ROW_HEAD = struct.Struct(">hiqiqiqi")  # fields; store_id, product_id, count; text length


# -- writing -------------------------------------------------------------------------------------


def binary_rows(columns: Sequence[tuple[str, str]], n_rows: int) -> np.ndarray:
    """`n_rows` empty binary COPY rows of `columns` ((name, PostgreSQL type) pairs) with the
    field count and lengths filled in: assign the values by column name, then `copy_in_binary`.
    NULL values are not supported: give a companion boolean column instead."""
    layout = [("fields", ">i2")]
    for name, kind in columns:
        layout += [(f"{name}__length", ">i4"), (name, BINARY_TYPES[kind])]
    rows = np.zeros(n_rows, dtype=np.dtype(layout))
    rows["fields"] = len(columns)
    for name, kind in columns:
        rows[f"{name}__length"] = np.dtype(BINARY_TYPES[kind]).itemsize
    return rows


def binary_dates(days_since_1970: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 as PostgreSQL binary date values."""
    return np.asarray(days_since_1970, dtype=np.int64) - EPOCH_2000_DAYS


def copy_in_binary(
    cursor, *, table: str, columns: Sequence[str], rows: np.ndarray, chunk_rows: int = 250_000
) -> None:
    """COPY the binary rows (from `binary_rows`) into `table`'s `columns`, `chunk_rows` rows
    per write so that no second copy of a big array is made."""
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    with cursor.copy(sql) as copy:
        copy.write(PGCOPY_HEADER)
        for start in range(0, len(rows), max(chunk_rows, 1)):
            copy.write(rows[start : start + chunk_rows].tobytes())
        copy.write(PGCOPY_TRAILER)
    note_write()  # COPY passes no execute wrapper: the tenant's cached API reads end here


def copy_in_frame(*, table: str, columns: Sequence[str], frame: pd.DataFrame) -> None:
    """COPY a frame's rows (columns in `columns` order) into `table` as CSV text."""
    if frame.empty:
        return
    buffer = io.StringIO()
    # Unknown float values travel as NaN, not NULL (such columns are NOT NULL floats).
    frame.to_csv(buffer, index=False, header=False, na_rep="NaN")
    with connection.cursor() as cursor:
        sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT csv)"
        with cursor.copy(sql) as copy:
            copy.write(buffer.getvalue())
    note_write()  # COPY passes no execute wrapper: the tenant's cached API reads end here


def refresh_statistics(*tables: str) -> None:
    """ANALYZE `tables` after a bulk write. Until autovacuum gets to them (never while the
    writing transaction lasts) the planner takes them for as small as before, and may then
    walk a whole table for each query: the T-1 backtest read one day's forecasts through the
    product index, seconds a query, after a few weeks of daily forecasts."""
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")


# -- reading -------------------------------------------------------------------------------------


def copy_to_bytes(query: str, params: list, *, copy_format: str) -> bytearray:
    """Everything `COPY (query) TO STDOUT` sends in `copy_format`, in one buffer."""
    data = bytearray()
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT {copy_format})", params) as copy,
    ):
        for message in copy:
            data += message
    return data


def copy_out_csv(query: str, params: list, columns: dict[str, pa.DataType]) -> pa.Table:
    """Rows of `query` fetched with COPY ... TO STDOUT (CSV) and parsed by pyarrow."""
    # One message per row: meant for small results (see copy_out_series for big ones).
    data = copy_to_bytes(query, params, copy_format="CSV")
    if not data:
        return pa.table({name: pa.array([], type=kind) for name, kind in columns.items()})
    return parse_csv(data, columns)


def parse_csv(data: bytes | bytearray, columns: dict[str, pa.DataType]) -> pa.Table:
    """Headerless CSV text with the given columns and types, as a pyarrow table."""
    return pa_csv.read_csv(
        pa.py_buffer(data),
        read_options=pa_csv.ReadOptions(column_names=list(columns)),
        convert_options=pa_csv.ConvertOptions(column_types=columns),
    )


def copy_out_series(query: str, params: list) -> tuple[np.ndarray, np.ndarray, np.ndarray, bytes]:
    """Rows (store_id bigint, product_id bigint, count bigint, text) of `query`, fetched with
    binary COPY; returns the three integer columns and all the texts joined.

    PostgreSQL sends every COPY row as its own message: one row per series, its days as text,
    costs 10k messages where one row per sale would cost 7.3M.
    """
    data = copy_to_bytes(query, params, copy_format="BINARY")
    if not data.startswith(PGCOPY_SIGNATURE):
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
