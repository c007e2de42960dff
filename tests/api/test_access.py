"""Who may read what, the token login, and the schema and docs pages."""

import pytest

from experiments.models import ModelExperiment
from mlops.models import ModelRetrainingLog, ModelVersion
from tests.api.clients import assert_error, client_for
from tests.api.factories import ModelVersionFactory, make_alert
from tests.tenancy import PASSWORD


@pytest.fixture
def objects():
    version = ModelVersionFactory(version_number=12, status=ModelVersion.Status.CHAMPION)
    return {
        "alert": make_alert(model_version=version).pk,
        "experiment": ModelExperiment.objects.create(
            name="e", hypothesis="h", experiment_type="algorithm"
        ).pk,
        "log": ModelRetrainingLog.objects.create(trigger="manual").pk,
    }


READS = [
    "/api/v1/models/health",
    "/api/v1/models/backtest/v12",
    "/api/v1/models/history",
    "/api/v1/models/retraining-log",
    "/api/v1/models/retraining-log/{log}",
    "/api/v1/ml-alerts",
    "/api/v1/ml-alerts/stats",
    "/api/v1/ml-alerts/{alert}",
    "/api/v1/experiments",
    "/api/v1/experiments/{experiment}",
    "/api/v1/experiments/{experiment}/results",
    "/api/v1/forecasts?store=S1&product=P1",
    "/api/v1/forecasts/explain?store=S1&product=P1&date=2026-01-01",
]


@pytest.mark.parametrize("path", READS)
def test_every_read_is_refused_to_a_user_without_a_role(path, objects, no_role, viewer):
    url = path.format(**objects)
    assert_error(client_for(no_role).get(url), 403, "permission_denied")
    assert client_for(viewer).get(url).status_code in (200, 404)  # 404: no such series


def test_marking_an_alert_read_needs_a_role(objects, no_role):
    assert_error(client_for(no_role).patch(f"/api/v1/ml-alerts/{objects['alert']}/read"), 403)


def test_rejecting_an_experiment_needs_a_manager(objects, scientist):
    url = f"/api/v1/experiments/{objects['experiment']}/reject"
    assert_error(client_for(scientist).patch(url, {"note": "no"}), 403)


def test_token_login_answers_the_users_token_and_refuses_bad_credentials(manager):
    client = client_for(None)
    first = client.post("/api/v1/auth/token", {"username": "maria", "password": PASSWORD})
    again = client.post("/api/v1/auth/token", {"username": "maria", "password": PASSWORD})
    assert first.status_code == 200 and first.json() == again.json()
    token = first.json()["token"]
    assert (
        client_for(None).get("/api/v1/ml-alerts", HTTP_AUTHORIZATION=f"Token {token}").status_code
        == 200
    )

    wrong = client.post("/api/v1/auth/token", {"username": "maria", "password": "nope"})
    assert_error(wrong, 400, "validation_error")
    missing = client.post("/api/v1/auth/token", {"username": "maria"})
    assert "password" in assert_error(missing, 400)["details"]["fields"]
    bogus = client_for(None).get("/api/v1/ml-alerts", HTTP_AUTHORIZATION="Token not-a-token")
    assert_error(bogus, 401, "authentication_failed")


def test_schema_and_swagger_ui_are_served_without_internet_assets():
    client = client_for(None)
    schema = client.get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/v1/ml-alerts/{alert_id}/action" in schema.json()["paths"]
    assert client.get("/api/v1/schema/").status_code == 200
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200
    page = docs.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower()


def test_unknown_api_path_is_404_in_the_error_shape():
    assert_error(client_for(None).get("/api/v1/no/such/thing"), 404, "not_found")
