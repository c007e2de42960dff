"""The spec's example calls (Testing Plan steps 4 and 5) as docs/API.md shows them: the tenant's
host and a token added, nothing else changed."""

import pytest
from rest_framework.test import APIClient

from mlops.models import ModelVersion
from tests.api.clients import HOST
from tests.api.factories import ModelVersionFactory, make_alert
from tests.tenancy import PASSWORD

# Step 5's body, verbatim.
SPEC_EXPERIMENT = {
    "experiment_name": "Test Experiment",
    "hypothesis": "This is a test",
    "experiment_type": "feature_engineering",
    "proposed_by": "test@example.com",
}


@pytest.fixture
def curl():
    """A client on the tenant's host with the token `POST /api/v1/auth/token` gives the
    tenant's admin (the README's first step)."""
    client = APIClient(HTTP_HOST=HOST)
    answer = client.post(
        "/api/v1/auth/token", {"username": "admin", "password": PASSWORD}, format="json"
    )
    assert answer.status_code == 200, answer.content
    client.credentials(HTTP_AUTHORIZATION=f"Token {answer.json()['token']}")
    return client


@pytest.fixture(autouse=True)
def champion():
    return ModelVersionFactory(version_number=12, status=ModelVersion.Status.CHAMPION)


def test_step_4_unread_alerts_and_stats(curl, champion):
    make_alert(model_version=champion)
    make_alert(dedup_key="degraded", alert_type="backtest_degradation", severity="warning")

    unread = curl.get("/api/v1/ml-alerts?status=unread")
    stats = curl.get("/api/v1/ml-alerts/stats")

    assert unread.status_code == 200
    alerts = unread.json()["results"]
    assert {a["alert_type"] for a in alerts} == {"drift_detected", "backtest_degradation"}
    drift = next(a for a in alerts if a["alert_type"] == "drift_detected")
    assert {"ml_alert_id", "severity", "title", "message", "metadata", "status", "action_url"} <= (
        set(drift)
    )
    assert stats.status_code == 200
    assert stats.json()["unread"] == {"info": 0, "warning": 1, "critical": 1, "total": 2}


def test_step_5_spec_body_verbatim_proposes_an_experiment(curl):
    response = curl.post("/api/v1/experiments", SPEC_EXPERIMENT, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "proposed"


def test_step_5_propose_then_list_experiments(curl):
    body = {
        **SPEC_EXPERIMENT,
        "experiment_type": "algorithm",
        "configuration": {"algorithm": "xgboost"},
    }

    proposed = curl.post("/api/v1/experiments", body, format="json")
    listed = curl.get("/api/v1/experiments")

    assert proposed.status_code == 201, proposed.content
    created = proposed.json()
    assert created["experiment_name"] == "Test Experiment"
    assert created["status"] == "proposed"
    assert created["proposed_by"] == "admin"  # not the body's proposed_by
    assert listed.status_code == 200
    assert [e["experiment_name"] for e in listed.json()["results"]] == ["Test Experiment"]
