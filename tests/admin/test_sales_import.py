"""The sales import page: an upload goes through the import service and shows what it did."""

from django.core.files.uploadedfile import SimpleUploadedFile

from forecasting.models import Sale
from tests.admin.conftest import logged_in

GOOD = (
    b"date,store,product,department,quantity\n"
    b"2026-03-01,S1,P1,Grocery,4\n"
    b"2026-03-01,S1,P2,Grocery,0\n"
    b"2026-03-02,S1,P1,Grocery,7\n"
)
BAD = (
    b"date,store,product,department,quantity\n"
    b"2026-03-01,S1,P1,Grocery,4\n"
    b"2026-03-32,S1,P2,Grocery,1\n"
    b"2026-03-02,S1,P1,Grocery,-3\n"
)


def _upload(client, content: bytes, name: str = "sales.csv"):
    return client.post(
        "/admin/forecasting/sale/import/",
        {"file": SimpleUploadedFile(name, content, "text/csv"), "create_missing": "on"},
    )


def test_a_valid_file_is_imported_and_summarised(scientist):
    response = _upload(logged_in("sam"), GOOD)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Imported 3 rows" in html and "2026-03-01 to 2026-03-02" in html
    assert Sale.objects.count() == 3


def test_a_bad_file_shows_each_row_at_fault_and_writes_nothing(scientist):
    response = _upload(logged_in("sam"), BAD)

    html = response.content.decode()
    assert "The file was refused; nothing was written" in html
    assert "<strong>2</strong> row(s) at fault" in html
    assert '<td class="num">2</td><td>date</td><td><code>2026-03-32</code></td>' in html
    assert '<td class="num">3</td><td>quantity</td><td><code>-3</code></td>' in html
    assert Sale.objects.count() == 0


def test_a_viewer_may_not_import(viewer):
    client = logged_in("vera")

    assert client.get("/admin/forecasting/sale/import/").status_code == 403
    assert _upload(client, GOOD).status_code == 403
    assert Sale.objects.count() == 0
