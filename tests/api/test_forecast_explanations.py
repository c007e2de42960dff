"""GET /api/v1/forecasts/explain: one served forecast split into exact feature contributions
that add up to the value GET /forecasts serves; a read that writes nothing."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from forecasting.artifacts import serialize
from forecasting.families import build_model
from forecasting.features import model_features
from forecasting.models import Forecast, Product, Store
from forecasting.panel import Panel
from forecasting.synthetic import generate_sales
from mlops.models import ModelVersion
from tests.api.clients import assert_error, client_for
from tests.api.factories import ModelVersionFactory
from tests.mlops.factories import load_sales, serve_forecasts

URL = "/api/v1/forecasts/explain"
DAY = dt.date(2026, 1, 1)  # the day after the generated sales end
QUICK_XGBOOST = {"n_estimators": 20, "max_depth": 3, "calibration_windows": 1}
# The five every authenticated read makes (search paths, domain, token, permissions), then the
# store, the product, the served forecast with its version, the stores and products of the
# sales panel and whether the tenant keeps a promotion calendar (the sales come by COPY).
QUERY_BUDGET = 11
IMPORTANCE = {
    "method": "permutation",
    "metric": "mae_increase",
    "unit": "units",
    "baseline_mae": 2.5,
    "rows": 840,
    "repeats": 3,
    "seed": 0,
    "held_out": "interval_calibration",
    "window": {"start": "2025-12-04", "end": "2025-12-31", "days": 28},
    "features": [
        {"feature": "same_weekday_last_week", "importance": 4.2, "spread": 0.1, "share_pct": 100.0}
    ],
}

# Every feature of the model: the test tenant has no holiday region, so no holiday features.
TENANT_FEATURES = model_features(None)


@pytest.fixture(autouse=True)
def artifact_storage(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture(scope="module")
def frame():
    return generate_sales(stores=2, products=3, days=90, seed=13)


@pytest.fixture(scope="module")
def artifact(frame):
    return serialize(build_model("xgboost", **QUICK_XGBOOST).fit(Panel.from_frame(frame)))


@pytest.fixture
def served(frame, artifact):
    load_sales(frame)
    return serve_forecasts(artifact=artifact, panel=Panel.from_frame(frame), day=DAY)


def _writes() -> int:
    """Rows this transaction has inserted, updated or deleted so far, in any table (COPY
    included, which Django's query log does not see)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) "
            "FROM pg_stat_xact_user_tables"
        )
        return int(cursor.fetchone()[0])


def test_a_served_forecast_is_explained_feature_by_feature_writing_nothing(viewer, served):
    forecast = Forecast.objects.filter(served=True).select_related("store", "product").first()
    query = {
        "store": forecast.store.code,
        "product": forecast.product.sku,
        "date": (DAY + dt.timedelta(days=3)).isoformat(),
    }
    client = client_for(viewer)
    served_values = client.get(
        "/api/v1/forecasts", {"store": query["store"], "product": query["product"]}
    ).json()["forecasts"]
    client.get(URL, query)  # a warm worker: code loaded, connection open
    writes_before = _writes()

    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL, query)

    assert response.status_code == 200, response.content
    body = response.json()
    assert _writes() == writes_before
    statements = [q["sql"] for q in queries if not q["sql"].startswith("SET search_path")]
    assert all(sql.startswith("SELECT") for sql in statements), statements
    assert len(queries) <= QUERY_BUDGET, [q["sql"] for q in queries]
    assert (body["store"], body["product"], body["date"]) == (
        query["store"],
        query["product"],
        query["date"],
    )
    assert (body["made_on"], body["days_ahead"]) == (DAY.isoformat(), 3)
    assert body["version"]["id"] == served.pk and body["version"]["algorithm"] == "xgboost"
    assert body["method"] == "tree_shap" and body["output_space"] == "identity"
    # The prediction is what GET /forecasts serves for that day, and the parts add up to it.
    assert body["prediction"] == served_values[3]["value"]
    contributions = body["contributions"]
    assert sorted(each["feature"] for each in contributions) == sorted(TENANT_FEATURES)
    magnitudes = [abs(each["contribution"]) for each in contributions]
    assert magnitudes == sorted(magnitudes, reverse=True)
    total = body["base_value"] + sum(each["contribution"] for each in contributions)
    assert abs(total - body["model_output"]) <= 1e-6
    assert abs(total - body["prediction"]) <= 1e-3
    assert body["output_steps"] == [] and body["reproduced"] is True
    lag_1 = next(each for each in contributions if each["feature"] == "lag_1")
    # Three days ahead, lag_1 is the forecast of the day before (the recursion's input).
    assert abs(lag_1["value"] - served_values[2]["value"]) <= 1e-3


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"product": "P1", "date": "2026-01-02"}, "store"),
        ({"store": "S1", "product": "P1"}, "date"),
        ({"store": "S1", "product": "P1", "date": "2026-13-01"}, "date"),
        ({"store": "S1", "product": "P1", "date": ""}, "date"),
        ({"store": "S1", "product": "P1", "date": ["2026-01-02", "2026-01-03"]}, "date"),
    ],
)
def test_a_missing_or_malformed_parameter_is_400(viewer, query, field):
    error = assert_error(client_for(viewer).get(URL, query), 400, "validation_error")

    assert field in error["details"]["fields"]


def naive_forecast_served_on(day: dt.date, **version_fields) -> Forecast:
    """A seasonal-naive champion's forecast of S1/P1 made for `day` and served."""
    champion = ModelVersionFactory(
        version_number=4, status=ModelVersion.Status.CHAMPION, **version_fields
    )
    return Forecast.objects.create(
        model_version=champion,
        store=Store.objects.create(code="S1"),
        product=Product.objects.create(sku="P1", department="Grocery"),
        made_on=day,
        target_date=day,
        value=5.0,
        lower=4.0,
        upper=6.0,
        served=True,
    )


def test_no_forecast_stored_for_the_key_is_404(viewer):
    naive_forecast_served_on(DAY)
    client = client_for(viewer)

    other_day = client.get(URL, {"store": "S1", "product": "P1", "date": "2026-01-05"})
    unknown_store = client.get(URL, {"store": "S9", "product": "P1", "date": "2026-01-01"})
    other_name = client.get(
        URL, {"store": "S1", "product": "P1", "date": "2026-01-01", "name": "other"}
    )

    assert "No forecast of P1 at S1 for 2026-01-05" in assert_error(other_day, 404)["message"]
    assert_error(unknown_store, 404)
    assert_error(other_name, 404)


@pytest.mark.parametrize("importance", [{"permutation": IMPORTANCE}, {}])
def test_a_family_without_exact_contributions_is_409_with_its_permutation_importance(
    viewer, importance
):
    naive_forecast_served_on(DAY, importance=importance)

    response = client_for(viewer).get(URL, {"store": "S1", "product": "P1", "date": "2026-01-01"})

    error = assert_error(response, 409, "no_exact_contributions")
    assert "seasonal_naive model, which has no exact per-feature contributions" in error["message"]
    assert error["details"]["version"]["version"] == "v4"
    assert error["details"]["importance"] == importance.get("permutation")
