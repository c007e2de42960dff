"""Forecasts served through the arena's routing, and sales uploads through the validated import."""

import datetime as dt
import io

import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from forecasting.models import Forecast, Product, Sale, Store
from mlops.models import ModelVersion, ShadowPrediction
from tests.api.clients import assert_error, client_for
from tests.api.factories import ModelVersionFactory

MADE_ON = dt.date(2026, 3, 2)


def _forecasts(version, store, product, *, served, offset=0.0, made_on=MADE_ON, lower=None):
    Forecast.objects.bulk_create(
        Forecast(
            model_version=version,
            store=store,
            product=product,
            made_on=made_on,
            target_date=made_on + dt.timedelta(days=step),
            value=10.0 + step + offset,
            lower=8.0 + step if lower is None else lower,
            upper=12.0 + step,
            served=served,
        )
        for step in range(7)
    )


@pytest.fixture
def series():
    store = Store.objects.create(code="S001", name="Main street")
    product = Product.objects.create(sku="TV-55", department="Electronics")
    champion = ModelVersionFactory(version_number=12, status=ModelVersion.Status.CHAMPION)
    shadow = ModelVersionFactory(version_number=15, status=ModelVersion.Status.SHADOW)
    # An older run of the champion must not be served.
    _forecasts(champion, store, product, served=True, made_on=MADE_ON - dt.timedelta(days=1))
    _forecasts(champion, store, product, served=True)
    _forecasts(shadow, store, product, served=False, offset=1.5)
    return store, product, champion, shadow


def test_forecast_is_served_by_the_champion_and_names_its_shadows_writing_nothing(viewer, series):
    store, product, champion, shadow = series
    client = client_for(viewer)

    response = client.get("/api/v1/forecasts", {"store": "S001", "product": "TV-55", "days": 3})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["version"]["version"] == "v12"
    assert body["made_on"] == "2026-03-02"
    assert [p["date"] for p in body["forecasts"]] == ["2026-03-02", "2026-03-03", "2026-03-04"]
    assert [p["value"] for p in body["forecasts"]] == [10.0, 11.0, 12.0]
    assert body["shadow_versions"] == ["v15"]
    # The shadow's evidence comes from the daily forecast job, never from a read.
    assert not ShadowPrediction.objects.exists()


def test_unknown_interval_bounds_are_null(viewer):
    store = Store.objects.create(code="S9")
    product = Product.objects.create(sku="P9", department="Grocery")
    champion = ModelVersionFactory(version_number=3, status=ModelVersion.Status.CHAMPION)
    _forecasts(champion, store, product, served=True, lower=float("nan"))

    body = client_for(viewer).get("/api/v1/forecasts?store=S9&product=P9").json()

    assert len(body["forecasts"]) == 7
    assert body["forecasts"][0]["lower"] is None


def test_forecast_without_a_champion_or_series_is_404(viewer):
    Store.objects.create(code="S1")
    Product.objects.create(sku="P1", department="Grocery")
    client = client_for(viewer)
    assert_error(client.get("/api/v1/forecasts?store=S1&product=P1"), 404, "not_found")
    assert_error(client.get("/api/v1/forecasts?store=S404&product=P1"), 404, "not_found")


def test_forecast_query_is_validated(viewer):
    response = client_for(viewer).get("/api/v1/forecasts?store=S1&days=0")
    fields = assert_error(response, 400, "validation_error")["details"]["fields"]
    assert set(fields) == {"product", "days"}


def test_forecasts_need_a_role(no_role, series):
    assert_error(client_for(no_role).get("/api/v1/forecasts?store=S001&product=TV-55"), 403)


CSV = (
    "date,store,product,quantity,department\n"
    "2026-01-01,S1,P1,3,Grocery\n"
    "2026-01-02,S1,P1,4,Grocery\n"
    "2026-01-01,S2,P1,5,Grocery\n"
)


def _upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def test_scientist_imports_a_csv(scientist):
    response = client_for(scientist).post(
        "/api/v1/sales/import", {"file": _upload("sales.csv", CSV.encode())}, format="multipart"
    )

    assert response.status_code == 201, response.content
    summary = response.json()
    assert (summary["rows"], summary["series"], summary["stores_created"]) == (3, 2, 2)
    assert summary["date_max"] == "2026-01-02"
    assert Sale.objects.count() == 3


def test_scientist_imports_parquet(scientist):
    frame = pd.read_csv(io.StringIO(CSV), dtype=str)
    buffer = io.BytesIO()
    frame.to_parquet(buffer)

    response = client_for(scientist).post(
        "/api/v1/sales/import",
        {"file": _upload("sales.parquet", buffer.getvalue())},
        format="multipart",
    )

    assert response.status_code == 201, response.content
    assert Sale.objects.count() == 3


def test_a_bad_file_changes_nothing_and_names_the_rows_at_fault(scientist):
    bad = CSV + "2026-01-03,S1,P1,-2,Grocery\nnot-a-date,S1,P1,1,Grocery\n"

    response = client_for(scientist).post(
        "/api/v1/sales/import", {"file": _upload("sales.csv", bad.encode())}, format="multipart"
    )

    error = assert_error(response, 400, "invalid_sales_file")
    assert error["details"]["rows_at_fault"] == 2
    assert sorted(e["row"] for e in error["details"]["errors"]) == [4, 5]
    assert {e["column"] for e in error["details"]["errors"]} == {"quantity", "date"}
    assert Sale.objects.count() == 0


def test_upload_without_a_file_is_a_field_error(scientist):
    response = client_for(scientist).post("/api/v1/sales/import", {}, format="multipart")
    assert "file" in assert_error(response, 400, "validation_error")["details"]["fields"]


def test_viewer_may_not_import_sales(viewer):
    response = client_for(viewer).post(
        "/api/v1/sales/import", {"file": _upload("sales.csv", CSV.encode())}, format="multipart"
    )
    assert_error(response, 403)
    assert Sale.objects.count() == 0


def test_upload_over_the_limit_is_413(scientist, settings):
    settings.SALES_UPLOAD_MAX_BYTES = 50
    client = client_for(scientist)

    response = client.post(
        "/api/v1/sales/import", {"file": _upload("sales.csv", CSV.encode())}, format="multipart"
    )
    error = assert_error(response, 413, "payload_too_large")
    assert error["details"]["limit_bytes"] == 50

    settings.SALES_UPLOAD_MAX_BYTES = 1000
    huge = CSV + "2026-01-03,S1,P1,1,Grocery\n" * 20_000  # over the limit and its envelope
    response = client.post(
        "/api/v1/sales/import", {"file": _upload("sales.csv", huge.encode())}, format="multipart"
    )
    assert_error(response, 413, "payload_too_large")
    assert Sale.objects.count() == 0


def test_a_code_of_white_space_is_an_unknown_series_not_a_malformed_request(viewer, series):
    # The schema allows any non-empty text; such a code names no store or product.
    response = client_for(viewer).get("/api/v1/forecasts", {"store": "S001", "product": "\x0c"})
    assert_error(response, 404, "not_found")
