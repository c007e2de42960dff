"""Tests of the dense sales panel built from long sales frames."""

import numpy as np
import pandas as pd
import pytest

from forecasting.panel import Panel

pytestmark = pytest.mark.nodb


def _sales_frame() -> pd.DataFrame:
    rows = [
        # date, store, product, department, quantity, on_promotion, price
        ("2025-03-01", "S1", "A", "Grocery", 3, False, 1.5),
        ("2025-03-01", "S1", "B", "Electronics", 1, True, 99.0),
        ("2025-03-01", "S2", "A", "Grocery", 5, False, 1.5),
        ("2025-03-02", "S1", "A", "Grocery", 4, True, 1.2),
        # 2025-03-02: S1/B absent but S1 reported -> 0; S2 sent nothing -> unknown.
        ("2025-03-03", "S2", "A", "Grocery", 7, False, 1.5),
    ]
    frame = pd.DataFrame(
        rows,
        columns=["date", "store", "product", "department", "quantity", "on_promotion", "price"],
    )
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def test_absent_cells_are_zero_when_store_reported_and_unknown_otherwise():
    panel = Panel.from_frame(_sales_frame())

    assert list(panel.series_keys()) == [("S1", "A"), ("S1", "B"), ("S2", "A")]
    assert list(panel.departments) == ["Grocery", "Electronics", "Grocery"]
    assert list(panel.dates.strftime("%Y-%m-%d")) == ["2025-03-01", "2025-03-02", "2025-03-03"]
    expected = np.array(
        [[3, 4, np.nan], [1, 0, np.nan], [5, np.nan, 7]],
        dtype=np.float32,
    )
    np.testing.assert_array_equal(panel.quantity, expected)
    np.testing.assert_array_equal(panel.on_promotion, [[0, 1, 0], [1, 0, 0], [0, 0, 0]])
    assert panel.quantity.dtype == np.float32
    assert panel.price[1, 0] == pytest.approx(99.0)
    assert np.isnan(panel.price[1, 1])


def test_duplicate_rows_are_rejected():
    frame = _sales_frame()
    with pytest.raises(ValueError, match="more than one row"):
        Panel.from_frame(pd.concat([frame, frame.iloc[:1]]))


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="on_promotion"):
        Panel.from_frame(_sales_frame().drop(columns=["on_promotion"]))


def test_until_window_and_select_slice_days_and_series():
    panel = Panel.from_frame(_sales_frame())

    before = panel.until("2025-03-02")
    assert before.n_days == 1 and before.n_series == 3
    assert panel.until("2025-01-01").n_days == 0
    assert panel.until("2026-01-01").n_days == 3

    middle = panel.window("2025-03-02", "2025-03-03")
    assert list(middle.dates.day) == [2, 3]
    np.testing.assert_array_equal(middle.quantity[2], [np.nan, 7])

    electronics = panel.select(panel.departments == "Electronics")
    assert electronics.n_series == 1 and electronics.products[0] == "B"
    assert panel.select([2, 0]).stores.tolist() == ["S2", "S1"]


def test_to_frame_round_trips_known_cells():
    panel = Panel.from_frame(_sales_frame())
    frame = panel.to_frame()

    assert len(frame) == 6  # 9 cells, 3 unknown
    again = Panel.from_frame(frame)
    np.testing.assert_array_equal(again.quantity, panel.quantity)
    assert len(panel.to_frame(include_unknown=True)) == 9


def test_series_positions_finds_rows_by_key():
    panel = Panel.from_frame(_sales_frame())
    positions = panel.series_positions(stores=["S2", "S9"], products=["A", "A"])
    assert positions.tolist() == [2, -1]
