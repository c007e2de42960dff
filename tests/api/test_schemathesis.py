"""Property-based run of every operation in the served OpenAPI schema (schemathesis): no 5xx,
and every response matches the schema (status code, content type, headers, body)."""

import datetime as dt
import time

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks
from schemathesis.specs.openapi import checks as openapi_checks

from alerts.models import MLAlert
from experiments.models import ModelExperiment
from forecasting.models import Forecast, Product, Store
from mlops.models import ModelVersion
from tests.api.clients import HOST
from tests.api.factories import ModelVersionFactory, UserFactory, make_alert

# Operations whose acceptance of a well-formed request depends on what the tenant has, which
# no schema can say: credentials, configurations checked against departments and families,
# model names the registry knows, the version labels an experiment holds, the rows of a sales
# file or a promotion calendar; and a rule between two parameters (a date range that ends
# before it starts, or spans over a year).
DATA_DEPENDENT = {
    "GET /api/v1/series/history",
    "POST /api/v1/auth/token",
    "POST /api/v1/experiments",
    "POST /api/v1/experiments/{experiment_id}/complete",
    "POST /api/v1/models/retrain",
    "POST /api/v1/sales/import",
    "POST /api/v1/promotions/import",
}


def _holds_nul(value) -> bool:
    if isinstance(value, str | bytes):
        return "\x00" in (value if isinstance(value, str) else value.decode(errors="replace"))
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_nul(item) for item in value)
    return False


def accepts_what_the_schema_allows(ctx, response, case):
    """The other direction of negative_data_rejection: a request the schema allows is not
    refused as malformed (page_size=0 was). Except where acceptance depends on the tenant's
    data, and NUL characters, which every input refuses (docs/API.md)."""
    parts = (case.path_parameters, case.query, case.body, case.headers)
    if case.operation.label in DATA_DEPENDENT or any(_holds_nul(part) for part in parts):
        return None
    return openapi_checks.positive_data_acceptance(ctx, response, case)


def rejects_what_the_schema_forbids(ctx, response, case):
    """negative_data_rejection, except where the invalid part never reaches the server: a query
    parameter mutated into an object is sent as its keys, not under its own name, so the
    request the server gets lacks the parameter and is valid."""
    if any(isinstance(value, dict) for value in (case.query or {}).values()):
        return None
    return openapi_checks.negative_data_rejection(ctx, response, case)


CHECKS = [
    checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
    rejects_what_the_schema_forbids,
    accepts_what_the_schema_allows,
]


@pytest.fixture
def wsgi_app():
    """The project's WSGI application, called in this test's transaction.

    Django closes a connection at each request's start and end when its autocommit differs
    from the settings', which would end the test's transaction; its test client stops that
    the same way."""
    from config.wsgi import application

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield application
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_data():
    """Some of every object, so that generated calls also reach the success paths."""
    champion = ModelVersionFactory(version_number=1, status=ModelVersion.Status.CHAMPION)
    ModelVersionFactory(version_number=2, status=ModelVersion.Status.CHALLENGER)
    store = Store.objects.create(code="S1")
    product = Product.objects.create(sku="P1", department="Grocery")
    Forecast.objects.bulk_create(
        Forecast(
            model_version=champion,
            store=store,
            product=product,
            made_on=dt.date(2026, 3, 1),
            target_date=dt.date(2026, 3, 1) + dt.timedelta(days=step),
            value=5.0,
            lower=float("nan"),
            upper=7.0,
            served=True,
        )
        for step in range(7)
    )
    for severity in MLAlert.Severity.values:
        make_alert(severity=severity, dedup_key=severity, model_version=champion)
    for status in (ModelExperiment.Status.PROPOSED, ModelExperiment.Status.APPROVED):
        ModelExperiment.objects.create(
            name=f"{status} one",
            hypothesis="h",
            experiment_type="algorithm",
            configuration={"algorithm": "xgboost"},
            status=status,
        )


@pytest.fixture
def api_schema(wsgi_app, api_data):
    return schemathesis.openapi.from_wsgi("/api/v1/schema", wsgi_app, headers={"Host": HOST})


@pytest.fixture
def token():
    from rest_framework.authtoken.models import Token

    user = UserFactory(username="fuzz-manager", role="ml_manager")
    return Token.objects.create(user=user).key


# Examples per operation and mode; ~25 operations, so about 1,000 calls in all.
EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 15}


def _run_operation(operation, mode: GenerationMode, headers: dict) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case):
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()


@pytest.mark.slow
def test_every_operation_answers_within_its_schema(api_schema, token):
    # schemathesis's pytest plug-in (schema.parametrize) fails on pytest 9, so each operation
    # is run here through its Python API, and every failure is reported together.
    headers = {"Host": HOST, "Authorization": f"Token {token}"}
    failures, operations = [], 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in EXAMPLES:
            try:
                _run_operation(operation, mode, headers)
            except Unsatisfiable:
                # No invalid request exists for an operation without parameters or body.
                assert mode == GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as error:  # reported together below
                failures.append(f"{operation.label} [{mode.value}]: {error}")
    assert operations >= 25
    assert not failures, "\n\n".join(failures)


# Stateful phase: chains of calls linked by the ids one answer gives the next (schemathesis
# infers the links: a proposed experiment's id to its approve, start, shadow-testing, results
# calls; a retrain's log id to its log), for this long at most.
STATEFUL_BUDGET_SECONDS = 40


@pytest.mark.slow
def test_chains_of_linked_calls_answer_within_the_schema(api_schema, token):
    from hypothesis import Phase, seed

    headers = {"Host": HOST, "Authorization": f"Token {token}"}
    calls: list[tuple[str, int]] = []

    class Workflow(api_schema.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"headers": headers}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            calls.append((f"{case.method} {case.path}", response.status_code))
            case.validate_response(response, checks=CHECKS, headers=headers)

    batch = settings(
        max_examples=10,
        stateful_step_count=8,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    # Hypothesis has no time limit: batches of ten chains, each from its own fixed seed (so a
    # failure reproduces), until the budget is spent.
    deadline = time.monotonic() + STATEFUL_BUDGET_SECONDS
    batches = 0
    while time.monotonic() < deadline:
        try:
            seed(batches)(Workflow).run(settings=batch)
        except Exception as error:
            error.add_note(f"In the stateful batch with seed({batches}).")
            raise
        batches += 1

    linked = [(label, code) for label, code in calls if "{" in label]
    assert len(calls) >= 100, calls
    # Chains reached the calls that need an id from an earlier answer, and succeeded on some.
    assert {label for label, _ in linked} >= {
        "GET /api/v1/experiments/{experiment_id}",
        "GET /api/v1/models/retraining-log/{log_id}",
    }, sorted({label for label, _ in linked})
    assert any(code < 300 for _, code in linked)
