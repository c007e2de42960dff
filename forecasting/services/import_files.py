"""Reading and checking import files (CSV/Parquet): the parts the sales and the promotion
calendar imports share. A file is read whole as text, every row is checked with vectorised
masks, and only the first problems become messages."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pa_parquet

FILE_FORMATS = ("csv", "parquet")
MAX_LISTED_ERRORS = 20
FLAG_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}

Source = str | os.PathLike | BinaryIO | pd.DataFrame


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


class ImportRejected(Exception):  # noqa: N818 (a refusal, not a fault of ours)
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


def file_error(message: str, *, column: str | None = None) -> ImportRejected:
    return ImportRejected(
        message, errors=[RowError(row=None, column=column, value=None, reason=message)]
    )


def read_source(
    source: Source, file_format: str | None, *, columns: tuple[str, ...], required: tuple[str, ...]
) -> pd.DataFrame:
    """The file (or frame) as a frame of the known `columns`, names normalised; raises
    ImportRejected when it cannot be read or lacks a `required` column."""
    if isinstance(source, pd.DataFrame):
        return _normalise_columns(source, columns=columns, required=required)
    file_format = (file_format or _format_from_name(source)).lower()
    if file_format == "csv":
        frame = _read_csv(source)
    elif file_format == "parquet":
        frame = _read_parquet(source)
    else:
        raise file_error(f"unsupported file format {file_format!r}: use csv or parquet")
    return _normalise_columns(frame, columns=columns, required=required)


def _format_from_name(source: str | os.PathLike | BinaryIO) -> str:
    name = str(source) if isinstance(source, str | os.PathLike) else getattr(source, "name", "")
    suffix = Path(str(name or "")).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise file_error(
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
        raise file_error("the header line is not UTF-8 text") from None
    if not any(name.strip() for name in names):
        raise file_error("the file is empty or has no header line")

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
        raise file_error(f"not a readable CSV file: {exc}") from None
    if bad_rows:
        raise ImportRejected(
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
        raise file_error(f"not a readable Parquet file: {exc}") from None


def _normalise_columns(
    frame: pd.DataFrame, *, columns: tuple[str, ...], required: tuple[str, ...]
) -> pd.DataFrame:
    names = [str(name).strip().lstrip("\ufeff").strip().lower() for name in frame.columns]
    repeated = sorted({name for name in names if names.count(name) > 1 and name in columns})
    errors = [
        RowError(row=None, column=name, value=None, reason="column appears more than once")
        for name in repeated
    ] + [
        RowError(row=None, column=name, value=None, reason="required column is missing")
        for name in required
        if name not in names
    ]
    if errors:
        raise ImportRejected(
            "; ".join(f"{error.column}: {error.reason}" for error in errors),
            errors=errors,
        )
    if len(frame) == 0:
        raise file_error("the file has no data rows")
    frame = frame.set_axis(names, axis=1)
    return frame[[name for name in columns if name in names]].reset_index(drop=True)


@dataclass
class Problems:
    """Row problems found by vectorised checks; only the first few are turned into text."""

    frame: pd.DataFrame
    columns: tuple[str, ...]
    checks: list[tuple[np.ndarray, str, Callable[[int], str]]] = field(default_factory=list)

    def add(self, mask: np.ndarray, column: str, reason: str | Callable[[int], str]) -> None:
        if mask.any():
            self.checks.append((mask, column, reason if callable(reason) else lambda _: reason))

    def raise_if_any(self) -> None:
        if not self.checks:
            return
        column_order = {name: position for position, name in enumerate(self.columns)}
        listed = []
        for mask, column, reason in self.checks:
            for index in np.flatnonzero(mask)[:MAX_LISTED_ERRORS]:
                listed.append((int(index), column_order[column], column, reason))
        listed.sort(key=lambda item: item[:2])
        errors = [
            RowError(
                row=index + 1,
                column=column,
                value=shown(self.frame[column].iloc[index]),
                reason=reason(index),
            )
            for index, _, column, reason in listed[:MAX_LISTED_ERRORS]
        ]
        error_count = sum(int(mask.sum()) for mask, _, _ in self.checks)
        rows_at_fault = int(np.logical_or.reduce([mask for mask, _, _ in self.checks]).sum())
        raise ImportRejected(
            f"{rows_at_fault:,} of {len(self.frame):,} rows have errors "
            f"({error_count:,} in all); nothing was imported",
            errors=errors,
            error_count=error_count,
            rows_at_fault=rows_at_fault,
        )


def shown(value) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp | np.datetime64):
        return str(pd.Timestamp(value))
    return str(value)[:200]


def factorize(column: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Codes (-1 for missing) and distinct values: checks then run once per distinct value."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    return codes.astype(np.int64, copy=False), pd.Index(uniques)


def take(values: np.ndarray, codes: np.ndarray, missing) -> np.ndarray:
    """values[codes], with `missing` where a code is -1."""
    return np.append(values, np.array([missing], dtype=values.dtype))[codes]


def text_of(uniques: pd.Index) -> pd.Index:
    return pd.Index(uniques.astype(str), dtype=object).str.strip()


def labels_of(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Per-row label codes (-1 for missing or blank) and the labels, stripped of spaces."""
    codes, uniques = factorize(column)
    compact, labels = pd.factorize(np.asarray(text_of(uniques), dtype=object))
    labels = np.asarray(labels, dtype=object)
    blank = labels == ""
    if blank.any():
        renumber = np.cumsum(~blank) - 1
        renumber[blank] = -1
        compact = renumber[compact]
        labels = labels[~blank]
    return take(compact.astype(np.int64), codes, -1), labels


def check_length(
    problems: Problems, column: str, codes: np.ndarray, labels: np.ndarray, max_length: int
) -> None:
    too_long = np.asarray(pd.Index(labels, dtype=object).str.len() > max_length, dtype=bool)
    if too_long.any():
        problems.add(take(too_long, codes, False), column, f"longer than {max_length} characters")


def days_of(column: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Days since 1970-01-01 of each row, and the masks of missing and unparseable dates."""
    codes, uniques = factorize(column)
    if uniques.inferred_type in ("string", "empty"):
        text = text_of(uniques)
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
    missing = (codes < 0) | take(blank, codes, False)
    bad = take(np.asarray(not_a_day, dtype=bool) & ~blank, codes, False)
    return take(days, codes, 0), missing, bad


def numbers_of(column: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row as float (NaN when missing or bad), and the masks of missing and non-numeric values."""
    dtype = column.dtype
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        missing = np.isnan(values)
        bad = np.isinf(values)
        values[bad] = np.nan
        return values, missing, bad
    codes, uniques = factorize(column)
    text = text_of(uniques)
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan, copy=True
    )
    numbers[np.isinf(numbers)] = np.nan
    blank = np.asarray(text == "", dtype=bool)
    values = take(numbers, codes, np.nan)
    missing = (codes < 0) | take(blank, codes, False)
    return values, missing, np.isnan(values) & ~missing


def flags_of(column: pd.Series, *, blank: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A flag column as booleans (a blank cell reads as `blank`), and the mask of values that
    are not a flag."""
    if pd.api.types.is_bool_dtype(column.dtype):
        return column.fillna(blank).to_numpy(dtype=bool), np.zeros(len(column), dtype=bool)
    codes, uniques = factorize(column)
    text = text_of(uniques).str.lower()
    if pd.api.types.is_numeric_dtype(uniques.dtype):
        text = pd.Index(["1" if value == 1 else "0" if value == 0 else "?" for value in uniques])
    flag = text.map(lambda word: FLAG_WORDS.get(word, blank))
    known = np.asarray(text.isin(list(FLAG_WORDS)) | (text == ""), dtype=bool)
    values = take(np.asarray(flag, dtype=bool), codes, blank)
    return values, ~take(known, codes, True)


def storable(labels) -> list[str]:
    """The labels PostgreSQL can compare: those without the NUL character (rows with one are
    rejected by `check_no_nul`)."""
    return [label for label in labels if "\x00" not in label]


def check_no_nul(problems: Problems, frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    """Reject the NUL character in the text cells of `columns`: PostgreSQL stores no NUL in
    text, so such a value could only fail later, in the middle of the write."""
    for column in columns:
        if column not in frame or pd.api.types.is_numeric_dtype(frame[column].dtype):
            continue
        codes, uniques = factorize(frame[column])
        has_nul = np.asarray(
            [isinstance(value, str) and "\x00" in value for value in uniques], dtype=bool
        )
        if has_nul.any():
            problems.add(take(has_nul, codes, False), column, "contains the NUL character")
