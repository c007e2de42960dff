"""The promotion calendar: a validated import, and forecasts that see a plan only once known."""

import datetime as dt
import io

import numpy as np
import pandas as pd
import pytest
from django.utils import timezone

from forecasting.backtesting import walk_forward
from forecasting.models import PlannedPromotion
from forecasting.selectors import load_sales_panel, with_promotion_calendar
from forecasting.services import CalendarImportError, import_promotion_calendar, import_sales
from forecasting.synthetic import generate_sales
from tests.forecasting.factories import ProductFactory, StoreFactory

HEADER = "store,product,department,start_date,end_date,discount_pct,price,known_since"


def _csv(*lines: str, header: str = HEADER) -> io.BytesIO:
    buffer = io.BytesIO(("\n".join((header, *lines)) + "\n").encode())
    buffer.name = "calendar.csv"
    return buffer


def _problems(error: CalendarImportError) -> list[tuple]:
    return [(e.row, e.column, e.value, e.reason) for e in error.errors]


@pytest.fixture
def shop():
    StoreFactory(code="S1")
    StoreFactory(code="S2")
    ProductFactory(sku="A", department="Grocery")
    ProductFactory(sku="B", department="Electronics")


def test_a_calendar_of_products_departments_and_all_stores_is_imported(shop):
    summary = import_promotion_calendar(
        source=_csv(
            "S1,A,,2025-03-01,2025-03-07,20,,2025-02-01",
            "*,,Electronics,2025-03-05,2025-03-06,,199.90,2025-02-20T10:30:00Z",
            ",B,,2025-03-10,2025-03-10,,,",
        )
    )
    assert (summary.rows, summary.added, summary.already_known) == (3, 3, 0)
    assert (summary.date_min, summary.date_max) == (dt.date(2025, 3, 1), dt.date(2025, 3, 10))
    rows = list(PlannedPromotion.objects.order_by("start_date"))
    assert [
        (r.store and r.store.code, r.product and r.product.sku, r.department) for r in rows
    ] == [
        ("S1", "A", ""),
        (None, None, "Electronics"),
        (None, "B", ""),
    ]
    assert rows[0].discount_pct == 20.0 and float(rows[1].price) == 199.90
    assert rows[0].known_since == dt.datetime(2025, 2, 1, tzinfo=dt.UTC)
    assert rows[1].known_since == dt.datetime(2025, 2, 20, 10, 30, tzinfo=dt.UTC)
    # No known_since: known from the moment of the import.
    assert timezone.now() - rows[2].known_since < dt.timedelta(minutes=1)

    again = import_promotion_calendar(source=_csv("S1,A,,2025-03-01,2025-03-07,20,,2025-02-01"))
    assert (again.added, again.already_known) == (0, 1)
    assert PlannedPromotion.objects.count() == 3


def test_bad_rows_are_named_and_nothing_is_written(shop):
    with pytest.raises(CalendarImportError) as caught:
        import_promotion_calendar(
            source=_csv(
                "S1,A,,2025-03-01,2025-03-07,20,,2025-02-01",
                "S9,A,,2025-03-01,2025-03-07,,,2025-02-01",
                "S1,A,,2025-03-07,2025-03-01,,,2025-02-01",
                "S1,A,,2025-03-01,2025-03-02,,-4.50,2025-02-01",
                "S1,Z,,2025-03-01,2025-03-02,,,2025-02-01",
                "S1,,Toys,2025-03-01,2025-03-02,,,2025-02-01",
                "S1,,,2025-03-01,2025-03-02,,,2025-02-01",
                "S1,A,,2025-03-01,2025-03-02,150,,2099-01-01",
                "S1,A\x00,,2025-03-01,2025-03-02,,,2025-02-01",
            )
        )
    assert _problems(caught.value) == [
        (2, "store", "S9", "unknown store"),
        (3, "end_date", "2025-03-01", "ends before its start date"),
        (4, "price", "-4.50", "negative price"),
        (5, "product", "Z", "unknown product"),
        (6, "department", "Toys", "unknown department"),
        (7, "product", "", "needs a product or a department"),
        (8, "discount_pct", "150", "not below 100"),
        (8, "known_since", "2099-01-01", "later than now"),
        (9, "product", "A\x00", "contains the NUL character"),
        (9, "product", "A\x00", "unknown product"),
    ]
    assert caught.value.rows_at_fault == 8
    assert PlannedPromotion.objects.count() == 0


def test_a_repeated_plan_in_one_file_names_the_first_row(shop):
    with pytest.raises(CalendarImportError) as caught:
        import_promotion_calendar(
            source=_csv(
                "S1,A,,2025-03-01,2025-03-07,,,2025-02-01",
                "S2,A,,2025-03-01,2025-03-07,,,2025-02-01",
                "S1,A,,2025-03-01,2025-03-07,,,2025-02-01",
            )
        )
    assert _problems(caught.value) == [(3, "start_date", "2025-03-01", "repeats the plan of row 1")]


def test_a_nul_character_in_a_sales_text_cell_is_rejected_by_row(shop):
    sales = io.BytesIO(
        b"date,store,product,quantity,department\n"
        b"2025-03-01,S1,A,3,Grocery\n"
        b"2025-03-01,S1,C,3,Groc\x00ery\n"
    )
    sales.name = "sales.csv"
    with pytest.raises(CalendarImportError) as caught:
        import_sales(source=sales)
    assert [(e.row, e.column, e.reason) for e in caught.value.errors] == [
        (2, "department", "contains the NUL character")
    ]


def test_a_backtest_at_a_cutoff_does_not_see_a_plan_made_after_it():
    sales = generate_sales(stores=1, products=2, days=120, seed=5, end_date=dt.date(2025, 4, 30))
    days = sales["date"].sort_values().unique()
    # Product A sells five times as much (plus 20) during four week-long promotions.
    windows = [(days[start], days[start + 6]) for start in (30, 50, 70, 100)]
    promoted = sales["product"] == "SKU00001"
    for first, last in windows:
        during = promoted & sales["date"].between(first, last)
        sales.loc[during, "quantity"] = sales.loc[during, "quantity"] * 5 + 20
    import_sales(source=sales)
    cutoff = days[100]
    # The first three were planned 20 days ahead; the last one a day after the cutoff.
    known = [first - np.timedelta64(20, "D") for first, _ in windows[:3]] + [days[101]]
    lines = [
        f"S001,SKU00001,,{first:%Y-%m-%d},{last:%Y-%m-%d},,,{pd.Timestamp(when):%Y-%m-%d}"
        for (first, last), when in zip(windows, known, strict=True)
    ]
    import_promotion_calendar(source=_csv(*lines))

    def forecast_at_cutoff() -> float:
        panel = with_promotion_calendar(load_sales_panel())
        (window,) = walk_forward(
            algorithm="xgboost",
            hyperparameters={"n_estimators": 30, "calibration_windows": 0},
            panel=panel,
            cutoffs=[cutoff],
            promotions_known=False,
        )
        row = list(panel.products).index("SKU00001")
        return float(window.forecast[row].sum())

    unseen = forecast_at_cutoff()
    # The same plan known a day before the cutoff reaches that cutoff's forecast.
    PlannedPromotion.objects.filter(start_date=cutoff).update(
        known_since=timezone.make_aware(dt.datetime(2025, 1, 1))
    )
    seen = forecast_at_cutoff()
    assert seen > unseen * 2
