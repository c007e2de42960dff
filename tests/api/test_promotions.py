"""The promotion calendar through the API: a validated import and a filtered list."""

from django.core.files.uploadedfile import SimpleUploadedFile

from forecasting.models import PlannedPromotion
from tests.api.clients import assert_error, client_for
from tests.forecasting.factories import ProductFactory, StoreFactory

CALENDAR = (
    "store,product,department,start_date,end_date,discount_pct,known_since\n"
    "S1,P1,,2026-01-05,2026-01-11,20,2025-12-20\n"
    "*,,Electronics,2026-01-08,2026-01-09,,2026-01-02\n"
)


def _upload(text: str) -> dict:
    return {"file": SimpleUploadedFile("calendar.csv", text.encode())}


def _shop():
    StoreFactory(code="S1")
    ProductFactory(sku="P1", department="Grocery")
    ProductFactory(sku="TV", department="Electronics")


def test_scientist_imports_a_calendar_and_a_viewer_lists_it(scientist, viewer):
    _shop()
    response = client_for(scientist).post(
        "/api/v1/promotions/import", _upload(CALENDAR), format="multipart"
    )
    assert response.status_code == 201, response.content
    assert response.json() == {
        "rows": 2,
        "added": 2,
        "already_known": 0,
        "date_min": "2026-01-05",
        "date_max": "2026-01-11",
    }

    listed = client_for(viewer).get("/api/v1/promotions").json()
    assert listed["count"] == 2
    first = listed["results"][0]
    assert (first["store"], first["product"], first["discount_pct"]) == ("S1", "P1", 20.0)
    assert listed["results"][1]["store"] is None

    on_day = client_for(viewer).get("/api/v1/promotions?active_on=2026-01-10").json()
    assert [row["product"] for row in on_day["results"]] == ["P1"]
    known_then = client_for(viewer).get("/api/v1/promotions?known_by=2025-12-31T00:00:00Z")
    assert known_then.json()["count"] == 1
    in_department = client_for(viewer).get("/api/v1/promotions?department=Electronics")
    assert in_department.json()["count"] == 1


def test_a_bad_calendar_is_400_with_the_rows_and_writes_nothing(scientist):
    _shop()
    bad = CALENDAR + "S7,P1,,2026-01-05,2026-01-04,,2025-12-20\n"
    response = client_for(scientist).post(
        "/api/v1/promotions/import", _upload(bad), format="multipart"
    )
    error = assert_error(response, 400, "invalid_calendar_file")
    assert [(e["row"], e["column"], e["reason"]) for e in error["details"]["errors"]] == [
        (3, "store", "unknown store"),
        (3, "end_date", "ends before its start date"),
    ]
    assert not PlannedPromotion.objects.exists()


def test_a_viewer_may_not_import_a_calendar(viewer):
    _shop()
    response = client_for(viewer).post(
        "/api/v1/promotions/import", _upload(CALENDAR), format="multipart"
    )
    assert_error(response, 403)


def test_a_blank_or_malformed_day_filter_is_a_400(viewer):
    for query in ("active_on=", "active_on=2026-13-01", "known_by=yesterday"):
        assert_error(client_for(viewer).get(f"/api/v1/promotions?{query}"), 400)
