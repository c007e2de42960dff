"""Sales selectors: the panel read back with COPY equals the panel of the imported rows."""

import datetime as dt
import time

import numpy as np
import pandas as pd
import pytest

from forecasting.panel import Panel
from forecasting.selectors import active_series, load_sales_panel, sales_date_range
from forecasting.services import import_sales
from forecasting.synthetic import generate_sales

ROWS = [
    # date, store, product, department, quantity, on_promotion, price
    ("2025-03-01", "S1", "A", "Grocery", 3, False, 1.5),
    ("2025-03-01", "S1", "B", "Electronics", 1, True, 99.0),
    ("2025-03-01", "S2", "A", "Grocery", 5, False, None),
    ("2025-03-02", "S1", "A", "Grocery", 4, True, 1.2),
    # 2025-03-02: S1/B absent but S1 reported -> 0; S2 sent nothing -> unknown.
    ("2025-03-03", "S2", "A", "Grocery", 7, False, 1.5),
    ("2025-03-03", "S1", "B", "Electronics", 2, False, 99.0),
]


def _frame(rows=ROWS) -> pd.DataFrame:
    frame = pd.DataFrame(
        rows,
        columns=["date", "store", "product", "department", "quantity", "on_promotion", "price"],
    )
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def _assert_same_panel(loaded: Panel, expected: Panel) -> None:
    assert loaded.stores.tolist() == expected.stores.tolist()
    assert loaded.products.tolist() == expected.products.tolist()
    assert loaded.departments.tolist() == expected.departments.tolist()
    assert loaded.dates.equals(expected.dates)
    np.testing.assert_array_equal(loaded.quantity, expected.quantity)
    np.testing.assert_array_equal(loaded.on_promotion, expected.on_promotion)
    np.testing.assert_allclose(loaded.price, expected.price)


def test_loaded_panel_equals_the_panel_of_the_imported_rows():
    import_sales(source=_frame())

    panel = load_sales_panel()

    _assert_same_panel(panel, Panel.from_frame(_frame()))
    s1_b, s2_a = 1, 2
    assert panel.quantity[s1_b].tolist() == [1, 0, 2]  # S1 reported on 03-02, B sold nothing
    assert np.isnan(panel.quantity[s2_a, 1])  # S2 sent nothing on 03-02
    assert np.isnan(panel.price[s2_a, 0])  # price not given


def test_generated_sales_round_trip_through_import_and_panel():
    sales = generate_sales(stores=4, products=6, days=90, seed=11)
    kept = sales.sample(frac=0.8, random_state=1)  # gaps: unknown days and zero days
    import_sales(source=kept)

    _assert_same_panel(load_sales_panel(), Panel.from_frame(kept))


def test_start_and_end_limit_the_days():
    import_sales(source=_frame())

    panel = load_sales_panel(start=dt.date(2025, 3, 2), end=dt.date(2025, 3, 2))

    assert panel.dates.tolist() == [pd.Timestamp("2025-03-02")]
    assert panel.stores.tolist() == ["S1"] and panel.products.tolist() == ["A"]


def test_department_filter_keeps_zero_days_of_stores_that_reported_other_departments():
    import_sales(source=_frame())

    panel = load_sales_panel(departments=["Electronics"])

    assert (panel.stores.tolist(), panel.products.tolist()) == (["S1"], ["B"])
    assert panel.departments.tolist() == ["Electronics"]
    assert panel.quantity[0].tolist() == [1, 0, 2]


def test_store_filter_keeps_only_those_stores():
    import_sales(source=_frame())

    panel = load_sales_panel(stores=["S2"])

    assert panel.stores.tolist() == ["S2"]
    np.testing.assert_array_equal(panel.quantity, [[5, np.nan, 7]])


def test_no_sales_gives_an_empty_panel_and_no_date_range():
    assert load_sales_panel().n_series == 0
    assert sales_date_range() is None


def test_sales_date_range_spans_first_to_last_sale():
    import_sales(source=_frame())
    assert sales_date_range() == (dt.date(2025, 3, 1), dt.date(2025, 3, 3))


def test_active_series_sold_something_in_the_last_28_days():
    rows = [
        ("2025-03-01", "S1", "A", "Grocery", 3, False, None),  # 31 days before: too old
        ("2025-03-04", "S1", "B", "Grocery", 2, False, None),  # 28th day back: active
        ("2025-03-31", "S2", "A", "Grocery", 0, False, None),  # reported but sold nothing
        ("2025-03-31", "S2", "B", "Grocery", 1, False, None),
        ("2025-04-01", "S1", "A", "Grocery", 9, False, None),  # after as_of
    ]
    import_sales(source=_frame(rows))

    active = active_series(as_of=dt.date(2025, 3, 31))

    assert list(zip(active["store"], active["product"], strict=True)) == [("S1", "B"), ("S2", "B")]
    assert active.columns.tolist() == ["store_id", "product_id", "store", "product", "department"]


@pytest.mark.slow
def test_a_large_tenants_two_years_load_quickly():
    """1,000 series x 730 days (730k rows); bench/import_sales.py times 10,000 series."""
    sales = generate_sales(stores=10, products=100, days=730, seed=5)
    import_sales(source=sales)

    started = time.perf_counter()
    panel = load_sales_panel()
    seconds = time.perf_counter() - started

    assert panel.quantity.shape == (1000, 730)
    assert not np.isnan(panel.quantity).any()
    assert seconds < 10
