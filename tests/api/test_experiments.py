"""Experiments API: propose, approve/reject, start, shadow-test, complete, results, by role."""

import datetime as dt

import pytest
from django.utils import timezone

from experiments.models import ExperimentResults, ModelExperiment
from experiments.tasks import compute_experiment_results
from forecasting.models import Product, Store
from mlops.models import ModelVersion
from tests.api.clients import assert_error, client_for
from tests.api.factories import ModelVersionFactory
from tests.experiments.factories import ExperimentFactory, shadow_rows

Status = ModelExperiment.Status
PROPOSAL = {
    "experiment_name": "XGBoost instead of seasonal naive",
    "hypothesis": "Gradient boosting on lags and calendar beats last week's pattern by 10%",
    "experiment_type": "algorithm",
    "configuration": {"algorithm": "xgboost"},
    "expected_improvement_pct": 10,
}


@pytest.fixture(autouse=True)
def champion():
    """Experiments are compared with a champion; proposals need one."""
    return ModelVersionFactory(version_number=1, status=ModelVersion.Status.CHAMPION)


def make_shadow_tested(champion, *, stores: int):
    """An experiment in shadow testing whose version has 14 days of shadow answers with actuals
    on `stores` series."""
    experiment = ExperimentFactory(
        status=Status.SHADOW_TESTING,
        experiment_type="algorithm",
        configuration={"algorithm": "xgboost"},
    )
    version = ModelVersionFactory(
        version_number=7, status=ModelVersion.Status.CHALLENGER, trigger="experiment"
    )
    experiment.model_versions.add(version)
    product = Product.objects.create(sku="P1", department="Grocery")
    for number in range(1, stores + 1):
        shadow_rows(
            version=version,
            served_by=champion,
            store=Store.objects.create(code=f"S{number}"),
            product=product,
            first_day=dt.date(2026, 2, 1),
            actual=[10.0] * 14,
            experimental=[10.5] * 14,
            served=[12.0] * 14,
        )
    return experiment, version


@pytest.fixture
def shadow_tested(champion):
    return make_shadow_tested(champion, stores=1)


@pytest.fixture
def gated_shadow_tested(champion):
    """Eight series: enough for the paired test over series that adoption needs."""
    return make_shadow_tested(champion, stores=8)


def test_scientist_proposes_an_experiment_as_themselves(scientist):
    body = {**PROPOSAL, "proposed_by": "someone.else@example.com"}

    response = client_for(scientist).post("/api/v1/experiments", body, format="json")

    assert response.status_code == 201, response.content
    created = response.json()
    assert created["experiment_name"] == PROPOSAL["experiment_name"]
    assert created["status"] == "proposed"
    assert created["proposed_by"] == "sami"
    assert created["allowed_transitions"] == ["approve", "reject"]
    assert response["Location"] == f"/api/v1/experiments/{created['experiment_id']}"
    assert ModelExperiment.objects.get().proposed_by == scientist


def test_proposal_field_errors_use_the_api_field_names(scientist):
    client = client_for(scientist)
    missing = client.post("/api/v1/experiments", {"hypothesis": "x"}, format="json")
    fields = assert_error(missing, 400, "validation_error")["details"]["fields"]
    assert {"experiment_name", "experiment_type"} <= set(fields)
    bad_config = client.post(
        "/api/v1/experiments",
        {**PROPOSAL, "configuration": {"algorithm": "prophet"}},
        format="json",
    )
    fields = assert_error(bad_config, 400, "validation_error")["details"]["fields"]
    assert "configuration" in fields


def test_viewer_may_not_propose(viewer):
    response = client_for(viewer).post("/api/v1/experiments", PROPOSAL, format="json")
    assert_error(response, 403, "permission_denied")
    assert not ModelExperiment.objects.exists()


def test_experiment_list_and_detail_in_the_spec_shape(viewer):
    done = ExperimentFactory(
        name="Department-Tiered Forecasting",
        status=Status.COMPLETED,
        results={"overall": {"improvement_pct": {"mae": 12.5}}},
        decision="adopt",
        decision_rationale="Exceeded target. Adopting Electronics tier.",
    )
    ExperimentFactory(status=Status.PROPOSED)
    client = client_for(viewer)

    listed = client.get("/api/v1/experiments?status=completed").json()
    (item,) = listed["results"]
    assert item["experiment_name"] == "Department-Tiered Forecasting"
    assert item["experiment_type"] == "segmentation"
    assert item["decision_rationale"] == "Exceeded target. Adopting Electronics tier."
    assert {"hypothesis", "status", "results"} <= set(item)
    detail = client.get(f"/api/v1/experiments/{done.pk}").json()
    assert detail["events"] == []
    assert_error(client.get("/api/v1/experiments?status=done"), 400)
    assert_error(client.get("/api/v1/experiments/999999"), 404)


def test_manager_approves_and_a_second_approval_is_a_conflict(manager):
    experiment = ExperimentFactory()
    client = client_for(manager)

    response = client.patch(
        f"/api/v1/experiments/{experiment.pk}/approve", {"note": "Go"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "approved"
    assert response.json()["approved_by"] == "maria"
    assert response.json()["events"][-1]["to_status"] == "approved"

    again = client.patch(f"/api/v1/experiments/{experiment.pk}/approve", {}, format="json")
    error = assert_error(again, 409, "illegal_transition")
    assert error["details"] == {"status": "approved", "allowed_transitions": ["start"]}


def test_scientist_may_not_approve(scientist):
    experiment = ExperimentFactory()
    response = client_for(scientist).patch(f"/api/v1/experiments/{experiment.pk}/approve")
    assert_error(response, 403)
    experiment.refresh_from_db()
    assert experiment.status == Status.PROPOSED


def test_rejection_needs_a_note_and_is_final(manager):
    experiment = ExperimentFactory()
    client = client_for(manager)
    url = f"/api/v1/experiments/{experiment.pk}/reject"

    assert "note" in assert_error(client.patch(url, {}, format="json"), 400)["details"]["fields"]
    assert client.patch(url, {"note": "Not now"}, format="json").json()["status"] == "rejected"
    error = assert_error(client.patch(url, {"note": "again"}, format="json"), 409)
    assert error["details"]["allowed_transitions"] == []


def test_start_queues_training_of_an_approved_experiment(
    scientist, django_capture_on_commit_callbacks
):
    experiment = ExperimentFactory(status=Status.APPROVED)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client_for(scientist).post(f"/api/v1/experiments/{experiment.pk}/start")
    assert response.status_code == 202, response.content
    assert len(queued) == 1


def test_start_of_a_proposed_experiment_is_a_conflict_and_viewers_may_not_start(scientist, viewer):
    experiment = ExperimentFactory()
    url = f"/api/v1/experiments/{experiment.pk}/start"
    error = assert_error(client_for(scientist).post(url), 409, "illegal_transition")
    assert error["details"] == {"status": "proposed", "allowed_transitions": ["approve", "reject"]}
    assert_error(client_for(viewer).post(url), 403)


def test_shadow_testing_puts_trained_candidates_in_shadow(scientist):
    experiment = ExperimentFactory(status=Status.IN_PROGRESS)
    version = ModelVersionFactory(version_number=5, trigger="experiment")
    experiment.model_versions.add(version)

    response = client_for(scientist).post(f"/api/v1/experiments/{experiment.pk}/shadow-testing")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "shadow_testing"
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.SHADOW


def test_shadow_testing_without_versions_or_too_early_is_refused(scientist, viewer):
    client = client_for(scientist)
    empty = ExperimentFactory(status=Status.IN_PROGRESS)
    assert_error(client.post(f"/api/v1/experiments/{empty.pk}/shadow-testing"), 400)
    proposed = ExperimentFactory()
    assert_error(client.post(f"/api/v1/experiments/{proposed.pk}/shadow-testing"), 409)
    assert_error(client_for(viewer).post(f"/api/v1/experiments/{empty.pk}/shadow-testing"), 403)


def test_complete_keeps_system_results_and_ignores_client_results(manager, gated_shadow_tested):
    experiment, version = gated_shadow_tested

    response = client_for(manager).post(
        f"/api/v1/experiments/{experiment.pk}/complete",
        {
            "decision": "adopt",
            "decision_rationale": "Beat the champion on 14 days of shadow traffic",
            "adopted_versions": ["v7"],
            "results": {"baseline_mae": 1.0, "experimental_mae": 0.1},
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "completed" and body["decision"] == "adopt"
    assert "baseline_mae" not in body["results"]
    segment = body["results"]["segments"]["global"]
    assert segment["source"] == "shadow"
    assert segment["improvement_pct"]["mae"] == pytest.approx((2.0 - 0.5) / 2.0 * 100)
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.CHAMPION
    results = client_for(manager).get(f"/api/v1/experiments/{experiment.pk}/results").json()
    assert results == body["results"]


def test_complete_validates_decision_and_versions(manager, shadow_tested):
    experiment, _ = shadow_tested
    client = client_for(manager)
    url = f"/api/v1/experiments/{experiment.pk}/complete"
    bad = client.post(url, {"decision": "maybe"}, format="json")
    fields = assert_error(bad, 400, "validation_error")["details"]["fields"]
    assert {"decision", "decision_rationale"} <= set(fields)
    stranger = client.post(
        url,
        {"decision": "partial_adopt", "decision_rationale": "x", "adopted_versions": ["v99"]},
        format="json",
    )
    assert "adopted_versions" in assert_error(stranger, 400)["details"]["fields"]
    experiment.refresh_from_db()
    assert experiment.status == Status.SHADOW_TESTING


def test_complete_by_role_and_state(viewer, manager):
    proposed = ExperimentFactory()
    body = {"decision": "reject", "decision_rationale": "No gain"}
    url = f"/api/v1/experiments/{proposed.pk}/complete"
    assert_error(client_for(viewer).post(url, body, format="json"), 403)
    assert_error(client_for(manager).post(url, body, format="json"), 409, "illegal_transition")


def test_results_of_an_open_experiment_are_computed_by_a_worker_and_then_read_as_stored(
    viewer, shadow_tested, django_capture_on_commit_callbacks
):
    experiment, _ = shadow_tested
    client = client_for(viewer)
    url = f"/api/v1/experiments/{experiment.pk}/results"
    with django_capture_on_commit_callbacks(execute=False) as queued:
        first = client.get(url)
        again = client.get(url)
    assert first.status_code == again.status_code == 200
    assert first.json()["state"] == "pending" and first.json()["computed_at"] is None
    assert first.json()["segments"] == {}
    assert len(queued) == 1  # one computation queued, however often someone looks

    compute_experiment_results(experiment.pk)  # what the queued task runs on a worker

    with django_capture_on_commit_callbacks(execute=False) as queued:
        stored = client.get(url).json()
    assert stored["state"] == "current" and stored["computed_at"]
    assert stored["segments"]["global"]["n_points"] == 14
    assert queued == []
    assert_error(client.get("/api/v1/experiments/999999/results"), 404)


def test_results_older_than_six_hours_are_shown_while_a_worker_recomputes_them(
    viewer, shadow_tested, django_capture_on_commit_callbacks
):
    experiment, _ = shadow_tested
    compute_experiment_results(experiment.pk)
    ExperimentResults.objects.filter(experiment=experiment).update(
        computed_at=timezone.now() - dt.timedelta(hours=7)
    )
    with django_capture_on_commit_callbacks(execute=False) as queued:
        body = client_for(viewer).get(f"/api/v1/experiments/{experiment.pk}/results").json()
    assert body["state"] == "stale"
    assert body["segments"]["global"]["n_points"] == 14
    assert len(queued) == 1
