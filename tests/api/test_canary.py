"""Canary rollouts through the API: start, read, a manager's moves, and the refusals (400 for a
bad plan, 409 for an illegal move, in the API's error shape)."""

import datetime as dt

import pytest

from forecasting.models import Product, Sale, Store
from mlops.models import ModelVersion
from tests.api.clients import assert_error, client_for
from tests.api.factories import ModelVersionFactory

Status = ModelVersion.Status
PLAN = {
    "initial_share": 0.1,
    "steps": [0.25, 0.5, 1.0],
    "bake_days": 2,
    "guardrails": [{"metric": "wape", "tolerance": 5}, {"metric": "bias", "tolerance": 10}],
    "reason": "try it on a tenth",
}


@pytest.fixture
def versions():
    stores = [Store.objects.create(code=f"S{i}") for i in range(5)]
    products = [Product.objects.create(sku=f"G{i}", department="Grocery") for i in range(10)]
    yesterday = dt.date.today() - dt.timedelta(days=1)
    Sale.objects.bulk_create(
        Sale(store=s, product=p, date=yesterday, quantity=2) for s in stores for p in products
    )
    champion = ModelVersionFactory(version_number=1, status=Status.CHAMPION)
    candidate = ModelVersionFactory(version_number=2, status=Status.CHALLENGER)
    return champion, candidate


def test_a_manager_starts_a_canary_and_everyone_reads_its_standing(versions, manager, viewer):
    response = client_for(manager).post("/api/v1/models/v2/canary", PLAN, format="json")

    assert response.status_code == 201, response.content
    plan = response.json()
    assert (plan["status"], plan["step"], plan["steps"], plan["share"]) == ("running", 1, 4, 0.1)
    assert plan["series"] == {"Grocery": 5} and plan["champion"] == "v1"
    assert plan["allowed_actions"] == ["pause", "skip", "abort"]
    assert [event["kind"] for event in plan["timeline"]] == ["started"]
    read = client_for(viewer).get("/api/v1/models/v2/canary")
    assert read.status_code == 200 and read.json()["id"] == plan["id"]
    health = client_for(viewer).get("/api/v1/models/health").json()
    assert health["canary"]["version"] == "v2" and health["canary"]["share"] == 0.1
    challenger = client_for(viewer).get("/api/v1/models/history?status=challenger").json()
    assert challenger["results"][0]["routing_mode"] == "canary"


def test_pause_resume_skip_and_abort_are_recorded_with_who_and_why(versions, manager):
    client = client_for(manager)
    client.post("/api/v1/models/v2/canary", PLAN, format="json")

    paused = client.post("/api/v1/models/v2/canary/pause", {"reason": "holidays"}, format="json")
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    refused = client.post("/api/v1/models/v2/canary/skip", {"reason": "go"}, format="json")
    error = assert_error(refused, 409, "illegal_transition")
    assert error["details"]["allowed_transitions"] == ["abort", "resume"]
    client.post("/api/v1/models/v2/canary/resume", {"reason": "back"}, format="json")
    skipped = client.post("/api/v1/models/v2/canary/skip", {"reason": "fine"}, format="json")
    assert skipped.json()["step"] == 2 and skipped.json()["share"] == 0.25
    aborted = client.post("/api/v1/models/v2/canary/abort", {"reason": "enough"}, format="json")

    plan = aborted.json()
    assert plan["status"] == "aborted" and plan["allowed_actions"] == []
    timeline = [(e["kind"], e["actor"], e["reason"]) for e in plan["timeline"]]
    assert timeline == [
        ("started", "maria", "try it on a tenth"),
        ("paused", "maria", "holidays"),
        ("resumed", "maria", "back"),
        ("skipped", "maria", "fine"),
        ("aborted", "maria", "enough"),
    ]
    again = client.post("/api/v1/models/v2/canary/pause", {"reason": "x"}, format="json")
    assert_error(again, 409, "illegal_transition")
    version = ModelVersion.objects.get(version="v2")
    assert (version.status, version.routing_mode) == (Status.CHALLENGER, "none")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"initial_share": 0}, "initial_share"),
        ({"initial_share": 1.5}, "initial_share"),
        ({"steps": [0.05]}, "steps"),
        ({"steps": [0.5, 0.25]}, "steps"),
        ({"guardrails": [{"metric": "mae", "tolerance": 1}]}, "guardrails"),
        ({"guardrails": [{"metric": "wape", "tolerance": -1}]}, "guardrails"),
        ({"bake_days": 0}, "bake_days"),
    ],
)
def test_a_bad_plan_is_a_400_naming_the_field(versions, manager, change, field):
    response = client_for(manager).post(
        "/api/v1/models/v2/canary", {**PLAN, **change}, format="json"
    )

    error = assert_error(response, 400, "validation_error")
    assert field in error["details"]["fields"], error


def test_a_canary_of_the_champion_or_by_a_viewer_is_refused(versions, manager, viewer):
    champion = client_for(manager).post("/api/v1/models/v1/canary", PLAN, format="json")
    assert_error(champion, 409, "illegal_transition")
    by_viewer = client_for(viewer).post("/api/v1/models/v2/canary", PLAN, format="json")
    assert_error(by_viewer, 403)
    assert_error(client_for(viewer).get("/api/v1/models/v2/canary"), 404)
