"""Sales import validation: a bad file is rejected whole, with its first bad rows and reasons."""

import io
import time

import pytest
from django.db import DatabaseError, connection

from forecasting.services import SalesImportError, import_sales
from forecasting.services.imports import MAX_LISTED_ERRORS
from forecasting.synthetic import generate_sales
from tests.forecasting.factories import ProductFactory, StoreFactory, sales_fingerprint

HEADER = "date,store,product,quantity,on_promotion,price,department"
GOOD = "2025-03-01,S1,A,3,no,1.00,Grocery"


def _csv(*lines: str, header: str = HEADER) -> io.BytesIO:
    return io.BytesIO(("\n".join((header, *lines)) + "\n").encode())


def _problems(error: SalesImportError) -> list[tuple]:
    return [(e.row, e.column, e.value, e.reason) for e in error.errors]


def test_one_bad_row_among_100k_rejects_the_file_names_the_row_and_changes_nothing(tmp_path):
    sales = generate_sales(stores=10, products=25, days=400, seed=3)
    assert len(sales) == 100_000
    import_sales(source=sales[sales["store"] == "S001"])  # the tenant already has some sales
    before = sales_fingerprint()
    sales["quantity"] = sales["quantity"].astype(object)
    sales.loc[73_456, "quantity"] = "-2"
    path = tmp_path / "sales.csv"
    sales.to_csv(path, index=False)

    started = time.perf_counter()
    with pytest.raises(SalesImportError) as caught:
        import_sales(source=path)
    seconds = time.perf_counter() - started

    assert _problems(caught.value) == [(73_457, "quantity", "-2", "negative quantity")]
    assert (caught.value.error_count, caught.value.rows_at_fault) == (1, 1)
    assert "1 of 100,000 rows" in caught.value.message
    assert sales_fingerprint() == before
    assert seconds < 10


def test_a_database_failure_while_writing_rolls_back_created_stores_and_rows():
    before = sales_fingerprint()
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION pg_temp.refuse_13() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.quantity = 13 THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER refuse_13 BEFORE INSERT ON forecasting_sale "
            "FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse_13()"
        )

    with pytest.raises(DatabaseError, match="refused"):
        import_sales(source=_csv(GOOD, "2025-03-02,S2,B,13,no,1.00,Grocery"), file_format="csv")

    assert sales_fingerprint() == before


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("2025-03-02,,A,3,no,1.00,Grocery", ("store", "", "missing value")),
        ("2025-03-02,S1, ,3,no,1.00,Grocery", ("product", " ", "missing value")),
        (",S1,A,3,no,1.00,Grocery", ("date", "", "missing value")),
        (
            "01/03/2025,S1,A,3,no,1.00,Grocery",
            ("date", "01/03/2025", "not a date (expected YYYY-MM-DD)"),
        ),
        (
            "2025-02-30,S1,A,3,no,1.00,Grocery",
            ("date", "2025-02-30", "not a date (expected YYYY-MM-DD)"),
        ),
        ("2025-03-02,S1,A,,no,1.00,Grocery", ("quantity", "", "missing value")),
        ("2025-03-02,S1,A,three,no,1.00,Grocery", ("quantity", "three", "not a number")),
        ("2025-03-02,S1,A,-1,no,1.00,Grocery", ("quantity", "-1", "negative quantity")),
        ("2025-03-02,S1,A,2.5,no,1.00,Grocery", ("quantity", "2.5", "not a whole number")),
        ("2025-03-02,S1,A,3e12,no,1.00,Grocery", ("quantity", "3e12", "larger than 2,147,483,647")),
        (
            "2025-03-02,S1,A,3,maybe,1.00,Grocery",
            ("on_promotion", "maybe", "not true/false, 1/0 or yes/no"),
        ),
        ("2025-03-02,S1,A,3,no,cheap,Grocery", ("price", "cheap", "not a number")),
        ("2025-03-02,S1,A,3,no,-0.5,Grocery", ("price", "-0.5", "negative price")),
        (
            f"2025-03-02,{'S' * 65},A,3,no,1.00,Grocery",
            ("store", "S" * 65, "longer than 64 characters"),
        ),
        (
            "2025-03-02,S1,A,3,no,1.00,Apparel",
            ("department", "Apparel", "product 'A' is in department 'Grocery' on row 1"),
        ),
        (
            "2025-03-01,S1,A,4,no,1.00,Grocery",
            ("date", "2025-03-01", "repeats store, product and date of row 1"),
        ),
        ("2025-03-02,S1,B,4,no,1.00,", ("department", "", "new product needs a department")),
    ],
)
def test_each_kind_of_bad_value_is_named_with_its_row(line, problem):
    before = sales_fingerprint()

    with pytest.raises(SalesImportError) as caught:
        import_sales(source=_csv(GOOD, line), file_format="csv")

    assert _problems(caught.value) == [(2, *problem)]
    assert sales_fingerprint() == before


def test_accepted_spellings_of_on_promotion_and_blank_price():
    lines = [
        f"2025-03-0{day},S1,A,1,{flag},,Grocery"
        for day, flag in enumerate(["true", "FALSE", "1", "0", "Yes", "no", ""], start=1)
    ]
    summary = import_sales(source=_csv(*lines), file_format="csv")
    assert summary.inserted == 7


def test_new_products_need_a_department_column():
    with pytest.raises(SalesImportError) as caught:
        import_sales(
            source=_csv("2025-03-01,S1,A,3", header="date,store,product,quantity"),
            file_format="csv",
        )
    assert _problems(caught.value) == [
        (1, "product", "A", "new product needs a department (add a department column)")
    ]

    ProductFactory(sku="A")
    summary = import_sales(
        source=_csv("2025-03-01,S1,A,3", header="date,store,product,quantity"), file_format="csv"
    )
    assert summary.inserted == 1


def test_missing_required_columns_are_named_and_nothing_is_read():
    with pytest.raises(SalesImportError) as caught:
        import_sales(source=_csv("S1,3", header="Store,QTY"), file_format="csv")

    assert _problems(caught.value) == [
        (None, "date", None, "required column is missing"),
        (None, "product", None, "required column is missing"),
        (None, "quantity", None, "required column is missing"),
    ]


def test_column_names_ignore_case_and_spaces_and_extra_columns_are_ignored():
    source = _csv("2025-03-01,S1,A,3,whatever", header=" Date ,STORE,Product,Quantity,notes")
    ProductFactory(sku="A")
    assert import_sales(source=source, file_format="csv").inserted == 1


def test_rows_with_the_wrong_number_of_fields_are_numbered():
    with pytest.raises(SalesImportError) as caught:
        import_sales(
            source=_csv(GOOD, "2025-03-02,S1,A,3,no", "2025-03-03,S1,A,3,no,1.00,Grocery,x"),
            file_format="csv",
        )

    assert [(e.row, e.reason) for e in caught.value.errors] == [
        (2, "has 5 fields, the header has 7"),
        (3, "has 8 fields, the header has 7"),
    ]


def test_an_empty_file_or_one_with_only_a_header_is_rejected():
    with pytest.raises(SalesImportError, match="empty or has no header"):
        import_sales(source=io.BytesIO(b""), file_format="csv")
    with pytest.raises(SalesImportError, match="no data rows"):
        import_sales(source=_csv(), file_format="csv")


def test_a_file_that_is_not_parquet_is_rejected_with_a_reason(tmp_path):
    path = tmp_path / "sales.parquet"
    path.write_text(HEADER + "\n" + GOOD + "\n")
    with pytest.raises(SalesImportError, match="not a readable Parquet file"):
        import_sales(source=path)


def test_many_errors_list_the_first_rows_in_order_and_count_them_all():
    StoreFactory(code="S1")
    lines = [f"2025-01-{day:02d},S1,A,-{day},no,1.00,Grocery" for day in range(1, 31)]
    lines[4] = "2025-01-05,S1,A,1,no,-1,Grocery"

    with pytest.raises(SalesImportError) as caught:
        import_sales(source=_csv(*lines), file_format="csv")

    error = caught.value
    assert len(error.errors) == MAX_LISTED_ERRORS
    assert [e.row for e in error.errors] == [1, 2, 3, 4, 5] + list(range(6, 21))
    assert error.errors[4].reason == "negative price"
    assert (error.error_count, error.rows_at_fault) == (30, 30)
    assert error.to_dict()["error_count"] == 30
