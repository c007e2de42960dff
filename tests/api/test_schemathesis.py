"""Property-based run of every operation in the served OpenAPI schema (schemathesis): no 5xx,
and every response matches the schema (status code, content type, headers, body)."""

import datetime as dt

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

CHECKS = [
    checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.negative_data_rejection,
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
