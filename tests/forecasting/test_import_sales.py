"""Sales import: valid CSV and Parquet files load with COPY, re-sent days replace, summaries count."""

import datetime as dt
import io
from decimal import Decimal

import pandas as pd
import pytest
from django_tenants.utils import schema_context

from forecasting.models import Product, Sale, Store
from forecasting.services import SalesImportError, import_sales
from tests.forecasting.factories import ProductFactory, SaleFactory, StoreFactory

CSV = """date,store,product,quantity,on_promotion,price,department,store_name,product_name
2025-03-01,S1,A,3,false,1.50,Grocery,Main Street,Apples
2025-03-01,S1,B,0,yes,99.99,Electronics,Main Street,Headphones
2025-03-01,S2,A,5,0,1.50,Grocery,Harbour,Apples
2025-03-02,S1,A,4,TRUE,1.20,Grocery,,
2025-03-03,S2,A,7,,,Grocery,,
"""


def _sales() -> set[tuple]:
    return set(
        Sale.objects.values_list(
            "store__code", "product__sku", "date", "quantity", "on_promotion", "price"
        )
    )


EXPECTED = {
    ("S1", "A", dt.date(2025, 3, 1), 3, False, Decimal("1.50")),
    ("S1", "B", dt.date(2025, 3, 1), 0, True, Decimal("99.99")),
    ("S2", "A", dt.date(2025, 3, 1), 5, False, Decimal("1.50")),
    ("S1", "A", dt.date(2025, 3, 2), 4, True, Decimal("1.20")),
    ("S2", "A", dt.date(2025, 3, 3), 7, False, None),
}


def test_valid_csv_loads_every_row_and_creates_stores_and_products(tmp_path):
    path = tmp_path / "sales.csv"
    path.write_text(CSV)

    summary = import_sales(source=path)

    assert _sales() == EXPECTED
    assert summary.rows == 5
    assert (summary.inserted, summary.updated) == (5, 0)
    assert summary.series == 3
    assert (summary.stores_created, summary.products_created) == (2, 2)
    assert (summary.date_min, summary.date_max) == (dt.date(2025, 3, 1), dt.date(2025, 3, 3))
    assert summary.seconds > 0
    assert dict(Store.objects.values_list("code", "name")) == {"S1": "Main Street", "S2": "Harbour"}
    assert set(Product.objects.values_list("sku", "name", "department")) == {
        ("A", "Apples", "Grocery"),
        ("B", "Headphones", "Electronics"),
    }


def test_valid_parquet_loads_the_same_rows_as_csv(tmp_path):
    frame = pd.read_csv(io.StringIO(CSV), dtype={"on_promotion": str})
    frame["date"] = pd.to_datetime(frame["date"]).dt.date  # a Parquet date32 column
    frame["on_promotion"] = frame["on_promotion"].str.lower().isin(["true", "yes", "1"])
    path = tmp_path / "sales.parquet"
    frame.to_parquet(path)

    summary = import_sales(source=path)

    assert _sales() == EXPECTED
    assert summary.rows == 5


def test_file_object_without_a_name_needs_the_format():
    with pytest.raises(SalesImportError, match="cannot tell the format"):
        import_sales(source=io.BytesIO(CSV.encode()))

    summary = import_sales(source=io.BytesIO(CSV.encode()), file_format="csv")

    assert summary.inserted == 5


def test_resent_day_replaces_quantity_promotion_and_price_and_keeps_other_days():
    import_sales(source=io.BytesIO(CSV.encode()), file_format="csv")
    resent = "date,store,product,quantity,on_promotion,price\n2025-03-01,S1,A,9,yes,1.10\n"

    summary = import_sales(source=io.BytesIO(resent.encode()), file_format="csv")

    assert (summary.inserted, summary.updated) == (0, 1)
    assert Sale.objects.count() == 5
    assert _sales() == EXPECTED - {("S1", "A", dt.date(2025, 3, 1), 3, False, Decimal("1.50"))} | {
        ("S1", "A", dt.date(2025, 3, 1), 9, True, Decimal("1.10"))
    }


def test_resent_file_without_price_or_promotion_columns_keeps_them():
    import_sales(source=io.BytesIO(CSV.encode()), file_format="csv")
    resent = "date,store,product,quantity\n2025-03-01,S1,B,2\n2025-03-04,S1,B,1\n"

    summary = import_sales(source=io.BytesIO(resent.encode()), file_format="csv")

    assert (summary.inserted, summary.updated) == (1, 1)
    rows = dict(
        Sale.objects.filter(store__code="S1", product__sku="B").values_list("date", "quantity")
    )
    assert rows == {dt.date(2025, 3, 1): 2, dt.date(2025, 3, 4): 1}
    kept = Sale.objects.get(store__code="S1", product__sku="B", date=dt.date(2025, 3, 1))
    assert (kept.on_promotion, kept.price) == (True, Decimal("99.99"))
    added = Sale.objects.get(store__code="S1", product__sku="B", date=dt.date(2025, 3, 4))
    assert (added.on_promotion, added.price) == (False, None)


def test_existing_stores_and_products_are_reused_and_renamed_by_the_file():
    store = StoreFactory(code="S1", name="Old name")
    product = ProductFactory(sku="A", name="Old apples", department="Produce")
    SaleFactory(store=store, product=product, date=dt.date(2025, 2, 1), quantity=1)

    summary = import_sales(source=io.BytesIO(CSV.encode()), file_format="csv")

    assert (summary.stores_created, summary.products_created) == (1, 1)
    assert Store.objects.get(pk=store.pk).name == "Main Street"
    assert Product.objects.get(pk=product.pk).department == "Grocery"
    assert Sale.objects.count() == 6


def test_rejecting_unknown_stores_and_products_names_their_rows():
    StoreFactory(code="S1")
    ProductFactory(sku="A")

    with pytest.raises(SalesImportError) as caught:
        import_sales(source=io.BytesIO(CSV.encode()), file_format="csv", create_missing=False)

    problems = [(e.row, e.column, e.value, e.reason) for e in caught.value.errors]
    assert problems == [
        (2, "product", "B", "unknown product"),
        (3, "store", "S2", "unknown store"),
        (5, "store", "S2", "unknown store"),
    ]
    assert Sale.objects.count() == 0
    assert Store.objects.count() == 1


def test_known_stores_and_products_load_when_rejecting_unknown():
    for code in ("S1", "S2"):
        StoreFactory(code=code)
    ProductFactory(sku="A")
    ProductFactory(sku="B", department="Electronics")

    summary = import_sales(source=io.BytesIO(CSV.encode()), file_format="csv", create_missing=False)

    assert summary.inserted == 5
    assert (summary.stores_created, summary.products_created) == (0, 0)


def test_a_dataframe_goes_through_the_same_validation():
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(["2025-03-01", "2025-03-02"]),
            "store": pd.Categorical(["S1", "S1"]),
            "product": ["A", "A"],
            "department": ["Grocery", "Grocery"],
            "quantity": [2, -1],
        }
    )
    with pytest.raises(SalesImportError) as caught:
        import_sales(source=frame)
    assert [(e.row, e.reason) for e in caught.value.errors] == [(2, "negative quantity")]

    summary = import_sales(source=frame.iloc[:1])

    assert summary.inserted == 1


def test_import_outside_a_tenant_schema_is_refused():
    with schema_context("public"), pytest.raises(RuntimeError, match="tenant"):
        import_sales(source=io.BytesIO(CSV.encode()), file_format="csv")
