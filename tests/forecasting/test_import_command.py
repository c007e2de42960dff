"""manage.py import_sales: prints a summary, or the rows at fault and fails."""

import pytest
from django.core.management import CommandError, call_command

from forecasting.models import Sale
from tests.forecasting.factories import StoreFactory

CSV = """date,store,product,quantity,department
2025-03-01,S1,A,3,Grocery
2025-03-01,S1,B,0,Electronics
2025-03-02,S1,A,4,Grocery
"""


def test_command_prints_rows_series_dates_and_speed(tmp_path, capsys):
    path = tmp_path / "sales.csv"
    path.write_text(CSV)

    call_command("import_sales", str(path), tenant="acme")

    out = capsys.readouterr().out
    assert f"Imported {path} into acme" in out
    assert "Rows: 3 (3 inserted, 0 replaced)" in out
    assert "Series: 2 (stores created: 1, products created: 2)" in out
    assert "Dates: 2025-03-01 to 2025-03-02" in out
    assert "rows/s" in out
    assert Sale.objects.count() == 3


def test_command_lists_bad_rows_and_fails(tmp_path, capsys):
    path = tmp_path / "sales.csv"
    path.write_text(CSV.replace("2025-03-02,S1,A,4", "2025-03-02,S1,A,4.5"))

    with pytest.raises(CommandError, match="1 of 3 rows have errors"):
        call_command("import_sales", str(path), tenant="acme")

    err = capsys.readouterr().err
    assert "row 3, column 'quantity': not a whole number (value '4.5')" in err
    assert Sale.objects.count() == 0


def test_command_with_reject_unknown_refuses_new_stores(tmp_path, capsys):
    path = tmp_path / "sales.csv"
    path.write_text(CSV)
    StoreFactory(code="S9")

    with pytest.raises(CommandError):
        call_command("import_sales", str(path), tenant="acme", reject_unknown=True)

    assert "row 1, column 'store': unknown store (value 'S1')" in capsys.readouterr().err


def test_command_names_an_unknown_tenant_or_missing_file(tmp_path):
    with pytest.raises(CommandError, match="No tenant with slug 'nosuch'"):
        call_command("import_sales", "x.csv", tenant="nosuch")
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_sales", str(tmp_path / "absent.csv"), tenant="acme")
