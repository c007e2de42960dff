"""COPY paths must work with DEBUG on too (workers and `make demo` run that way)."""

import datetime as dt

from django.test import override_settings

from forecasting.selectors import load_sales_panel
from forecasting.services import import_sales
from forecasting.synthetic import generate_sales


@override_settings(DEBUG=True)
def test_sales_load_and_read_back_with_debug_cursors():
    sales = generate_sales(stores=2, products=3, days=30, seed=1, end_date=dt.date(2026, 3, 31))
    import_sales(source=sales)
    panel = load_sales_panel(start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 31))
    assert panel.n_series == 6 and panel.n_days == 30
    assert panel.quantity.sum() == sales["quantity"].sum()
