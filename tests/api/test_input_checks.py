"""Inputs the API refuses at the door with a 400 naming what is wrong (found by schemathesis):
NUL characters, hyperparameters a family does not take, models and segments the tenant does
not have, non-text notes; and paths that answer the API's JSON 404, not an HTML page."""

import pytest

from experiments.models import ModelExperiment
from forecasting.models import Product
from mlops.models import ModelRetrainingLog, ModelVersion
from tests.api.clients import assert_error, client_for
from tests.api.factories import ModelVersionFactory, make_alert
from tests.experiments.factories import ExperimentFactory

RETRAIN = "/api/v1/models/retrain"


@pytest.fixture
def champion():
    return ModelVersionFactory(
        version_number=3, status=ModelVersion.Status.CHAMPION, algorithm="xgboost"
    )


def retrain(user, body, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client_for(user).post(RETRAIN, body, format="json")
    return response, queued


# -- NUL ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"hyperparameters": {"max_depth\u0000": 3}},
        {"hyperparameters": {"objective": "reg:squarederror\u0000"}},
        {"reason": "night\u0000run"},
    ],
)
def test_a_nul_character_in_a_json_body_is_a_400_and_queues_nothing(
    scientist, champion, body, django_capture_on_commit_callbacks
):
    response, queued = retrain(scientist, body, django_capture_on_commit_callbacks)
    error = assert_error(response, 400, "parse_error")
    assert "NUL character" in error["message"]
    assert queued == [] and not ModelRetrainingLog.objects.exists()


def test_a_nul_character_in_a_query_string_or_a_path_is_a_400_in_the_error_shape(viewer):
    client = client_for(viewer)
    for url in (
        "/api/v1/models/health?name=demand%00forecast",
        "/api/v1/ml-alerts?status%00=unread",
        "/api/v1/models/backtest/v1%00",
        "/api/v1/forecasts?store=S%001&product=P1",
    ):
        assert "NUL character" in assert_error(client.get(url), 400, "parse_error")["message"]


def test_a_nul_in_a_note_is_refused_before_the_database(manager):
    alert = make_alert(severity="warning", dedup_key="nul")
    url = f"/api/v1/ml-alerts/{alert.pk}/action"
    response = client_for(manager).patch(url, {"action": "dismiss", "note": "a\u0000"})
    assert_error(response, 400, "parse_error")
    alert.refresh_from_db()
    assert alert.status == "unread"


# -- hyperparameters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "key", "says"),
    [
        ({"hyperparameters": {"depth": 3}}, "depth", "xgboost has no such hyperparameter"),
        ({"hyperparameters": {"n_estimators": "many"}}, "n_estimators", "whole number"),
        ({"hyperparameters": {"n_estimators": [1, 2]}}, "n_estimators", "whole number"),
        ({"hyperparameters": {"max_depth": {"a": 1}}}, "max_depth", "whole number"),
        ({"hyperparameters": {"max_depth": 3.5}}, "max_depth", "whole number"),
        ({"hyperparameters": {"max_depth": True}}, "max_depth", "whole number"),
        ({"hyperparameters": {"n_estimators": 0}}, "n_estimators", "from 1 to 5000"),
        ({"hyperparameters": {"learning_rate": 0}}, "learning_rate", "above 0 to 1"),
        ({"hyperparameters": {"objective": "reg:gamma"}}, "objective", "not one of"),
        (
            {"algorithm": "seasonal_naive", "hyperparameters": {"n_estimators": 10}},
            "n_estimators",
            "seasonal_naive has no such hyperparameter",
        ),
        ({"algorithm": "lstm", "hyperparameters": {"epochs": 10_000}}, "epochs", "1 to 200"),
    ],
)
def test_hyperparameters_are_checked_against_the_familys_when_the_retrain_is_asked_for(
    scientist, champion, body, key, says, django_capture_on_commit_callbacks
):
    response, queued = retrain(scientist, body, django_capture_on_commit_callbacks)
    fields = assert_error(response, 400, "validation_error")["details"]["fields"]
    [message] = fields["hyperparameters"][key]
    assert says in message, message
    assert queued == [] and not ModelRetrainingLog.objects.exists()


def test_hyperparameters_the_family_takes_queue_the_retrain(
    scientist, champion, django_capture_on_commit_callbacks
):
    body = {
        "hyperparameters": {"n_estimators": 120, "learning_rate": 0.1, "objective": "reg:tweedie"}
    }
    response, queued = retrain(scientist, body, django_capture_on_commit_callbacks)
    assert response.status_code == 202, response.content
    assert len(queued) == 1


def test_experiment_hyperparameters_are_checked_naming_the_key(scientist, champion):
    body = {
        "experiment_name": "Deeper trees",
        "hypothesis": "Deeper trees fit the weekly pattern better",
        "experiment_type": "hyperparameters",
        "configuration": {"algorithm": "xgboost", "hyperparameters": {"max_depth": 99}},
    }
    response = client_for(scientist).post("/api/v1/experiments", body, format="json")
    [problem] = assert_error(response, 400)["details"]["fields"]["configuration"]
    assert problem.startswith("hyperparameters: max_depth:") and "1 to 20" in problem
    assert not ModelExperiment.objects.exists()


# -- model names and segments -------------------------------------------------------------------


def test_a_retrain_of_a_model_or_segment_the_tenant_does_not_have_is_refused(
    scientist, champion, django_capture_on_commit_callbacks
):
    Product.objects.create(sku="TV-1", department="Electronics")
    for body, field, says in (
        ({"name": "démand_ƒorecast"}, "name", "No model is named"),
        ({"segment": "department:Garden"}, "segment", "department:<name> of Electronics"),
    ):
        response, queued = retrain(scientist, body, django_capture_on_commit_callbacks)
        [message] = assert_error(response, 400)["details"]["fields"][field]
        assert says in message, message
        assert queued == []
    response, queued = retrain(
        scientist, {"segment": "department:Electronics"}, django_capture_on_commit_callbacks
    )
    assert response.status_code == 202, response.content  # a department with products
    assert ModelRetrainingLog.objects.get().segment == "department:Electronics"


def test_the_first_retrain_of_a_new_tenant_may_name_the_default_model(
    scientist, django_capture_on_commit_callbacks
):
    response, queued = retrain(scientist, {}, django_capture_on_commit_callbacks)
    assert response.status_code == 202, response.content
    assert ModelRetrainingLog.objects.get().name == "demand_forecast"


# -- text fields, pages, paths, conflicts ---------------------------------------------------------


@pytest.mark.parametrize("note", [5, True, ["why"], {"why": 1}])
def test_a_note_that_is_not_text_is_refused(manager, note):
    experiment = ExperimentFactory()
    url = f"/api/v1/experiments/{experiment.pk}/approve"
    fields = assert_error(client_for(manager).patch(url, {"note": note}, format="json"), 400)
    assert "Give text" in fields["details"]["fields"]["note"][0]
    assert ModelExperiment.objects.get(pk=experiment.pk).status == "proposed"


def test_a_note_longer_than_the_schema_allows_is_refused_even_with_blank_ends(manager):
    experiment = ExperimentFactory()
    url = f"/api/v1/experiments/{experiment.pk}/reject"
    # 5,001 characters as sent: DRF alone would count 5,000 after trimming the space.
    note = "\u00a0" + "x" * 5000
    fields = assert_error(client_for(manager).patch(url, {"note": note}, format="json"), 400)
    assert "5000" in fields["details"]["fields"]["note"][0]
    assert ModelExperiment.objects.get(pk=experiment.pk).status == "proposed"
    response = client_for(manager).patch(url, {"note": " " + "x" * 4999}, format="json")
    assert response.status_code == 200, response.content
    assert ModelExperiment.objects.get(pk=experiment.pk).status == "rejected"


def test_the_schema_declares_the_page_limits_the_server_enforces(viewer):
    client = client_for(viewer)
    schema = client.get("/api/v1/schema?format=json").json()
    parameters = {p["name"]: p for p in schema["paths"]["/api/v1/ml-alerts"]["get"]["parameters"]}
    assert parameters["page_size"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 500}
    assert parameters["page"]["schema"] == {"type": "integer", "minimum": 1}
    assert_error(client.get("/api/v1/ml-alerts?page_size=0"), 400)


def test_a_path_with_a_newline_answers_the_apis_json_404(viewer):
    for url in ("/api/v1/models/health%0A", "/api/v1/%0A", "/api/v1/experiments/1/results%0Ax"):
        response = client_for(viewer).get(url)
        assert response["Content-Type"] == "application/json", url
        assert_error(response, 404, "not_found")


@pytest.mark.parametrize("status", ["proposed", "approved", "rejected", "completed"])
def test_shadow_testing_in_the_wrong_state_is_a_409_listing_the_moves_allowed(scientist, status):
    experiment = ExperimentFactory(status=status)
    response = client_for(scientist).post(f"/api/v1/experiments/{experiment.pk}/shadow-testing")
    details = assert_error(response, 409, "illegal_transition")["details"]
    assert details["status"] == status
    assert "start_shadow_testing" not in details["allowed_transitions"]


def test_a_refused_move_answers_409_while_another_thread_refreshes_an_experiment(scientist):
    """django-fsm lifts the status field's protection for the whole model class while one
    instance refreshes; another thread's refresh ending mid-way puts it back. Here every query
    of the request ends as such a refresh would, so a refresh_from_db() in the request fails."""
    from django.db import connection

    field = ModelExperiment._meta.get_field("status")

    def another_refresh_ends(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        field.protected = True
        return result

    experiment = ExperimentFactory(status="proposed")
    client = client_for(scientist)
    client.raise_request_exception = False
    with connection.execute_wrapper(another_refresh_ends):
        response = client.post(f"/api/v1/experiments/{experiment.pk}/shadow-testing")
    details = assert_error(response, 409, "illegal_transition")["details"]
    assert details == {"status": "proposed", "allowed_transitions": ["approve", "reject"]}


def test_a_required_note_of_white_space_is_refused_as_the_schema_says(manager):
    experiment = ExperimentFactory()
    url = f"/api/v1/experiments/{experiment.pk}/reject"
    client = client_for(manager)

    fields = assert_error(client.patch(url, {"note": " \u00a0\t"}, format="json"), 400)

    assert "blank" in fields["details"]["fields"]["note"][0]
    assert ModelExperiment.objects.get(pk=experiment.pk).status == "proposed"
    # The schema's pattern and the server read white space alike: \x1c is text to both.
    schema = client.get("/api/v1/schema?format=json").json()
    note = schema["components"]["schemas"]["RejectRequest"]["properties"]["note"]
    assert note["pattern"].startswith("[^\\t\\n")
    assert client.patch(url, {"note": "\x1c"}, format="json").status_code == 200
