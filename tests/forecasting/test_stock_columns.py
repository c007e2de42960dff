"""Stock columns of the sales import: a zero sale while out of stock is censored demand."""

import datetime as dt
import io

import numpy as np
import pytest

from forecasting.models import Sale
from forecasting.selectors import load_sales_panel
from forecasting.services import SalesImportError, import_sales


def _csv(text: str) -> io.BytesIO:
    buffer = io.BytesIO(text.encode())
    buffer.name = "sales.csv"
    return buffer


def test_in_stock_and_stock_on_hand_are_stored_and_censor_zero_sales_in_the_panel():
    import_sales(
        source=_csv(
            "date,store,product,quantity,in_stock,stock_on_hand,department\n"
            "2025-03-01,S1,A,0,no,,Grocery\n"  # out of stock: censored
            "2025-03-01,S1,B,0,,0,Grocery\n"  # no flag, nothing on hand: censored
            "2025-03-02,S1,A,0,yes,4,Grocery\n"  # in stock and sold nothing: a real zero
            "2025-03-02,S1,B,3,no,0,Grocery\n"  # sold out during the day: a known sale
        )
    )
    stock = {
        (sale.product.sku, sale.date.day): (sale.in_stock, sale.stock_on_hand, sale.censored)
        for sale in Sale.objects.select_related("product")
    }
    assert stock == {
        ("A", 1): (False, None, True),
        ("B", 1): (False, 0, True),
        ("A", 2): (True, 4, False),
        ("B", 2): (False, 0, False),
    }
    panel = load_sales_panel(start=dt.date(2025, 3, 1), end=dt.date(2025, 3, 2))
    assert panel.censored.tolist() == [[True, False], [True, False]]
    # Censored demand is unknown (NaN), unlike the real zero of A on the second day.
    assert np.isnan(panel.quantity[:, 0]).all()
    assert panel.quantity[:, 1].tolist() == [0.0, 3.0]


def test_a_file_without_stock_columns_keeps_the_stored_stock_of_re_sent_days():
    import_sales(
        source=_csv(
            "date,store,product,quantity,in_stock,department\n2025-03-01,S1,A,0,no,Grocery\n"
        )
    )
    import_sales(source=_csv("date,store,product,quantity\n2025-03-01,S1,A,2\n"))
    sale = Sale.objects.get()
    assert (sale.quantity, sale.in_stock) == (2, False)


def test_bad_stock_values_are_named():
    with pytest.raises(SalesImportError) as caught:
        import_sales(
            source=_csv(
                "date,store,product,quantity,in_stock,stock_on_hand,department\n"
                "2025-03-01,S1,A,0,maybe,,Grocery\n"
                "2025-03-02,S1,A,0,,-1,Grocery\n"
                "2025-03-03,S1,A,0,,1.5,Grocery\n"
            )
        )
    assert [(e.row, e.column, e.reason) for e in caught.value.errors] == [
        (1, "in_stock", "not true/false, 1/0 or yes/no"),
        (2, "stock_on_hand", "negative stock"),
        (3, "stock_on_hand", "not a whole number"),
    ]
    assert not Sale.objects.exists()
