"""GET /models/health is cached per tenant for a short while and forgotten by the services that
change what it shows."""

import datetime as dt

from django_tenants.utils import tenant_context

from mlops.models import BacktestResult, ModelVersion
from mlops.services import promote_to_champion
from mlops.services.backtesting import store_backtest_results
from tests.api.clients import OTHER_HOST, client_for
from tests.api.factories import ModelVersionFactory, UserFactory

Status = ModelVersion.Status


def _health(user, host=None):
    client = client_for(user) if host is None else client_for(user, host=host)
    return client.get("/api/v1/models/health").json()


def test_a_promotion_is_shown_by_the_next_read(viewer, manager, django_capture_on_commit_callbacks):
    ModelVersionFactory(version_number=1, status=Status.CHAMPION)
    challenger = ModelVersionFactory(version_number=2, status=Status.CHALLENGER)
    assert _health(viewer)["champion"]["version"] == "v1"

    with django_capture_on_commit_callbacks(execute=True):
        promote_to_champion(version=challenger, actor=manager, reason="Better on every week.")

    assert _health(viewer)["champion"]["version"] == "v2"


def test_new_t_minus_1_results_are_shown_by_the_next_read(
    viewer, django_capture_on_commit_callbacks
):
    champion = ModelVersionFactory(version_number=1, status=Status.CHAMPION)
    assert _health(viewer)["champion"]["mae_7d"] is None

    day = dt.date(2026, 3, 1)
    with django_capture_on_commit_callbacks(execute=True):
        store_backtest_results(
            version=champion,
            kind=BacktestResult.Kind.T_MINUS_1,
            rows=[{"window_start": day, "window_end": day, "mae": 3.5, "n_points": 10}],
        )

    assert _health(viewer)["champion"]["mae_7d"] == 3.5


def test_without_a_service_the_cached_answer_stands(viewer):
    """What a read shows comes from the cache until a service forgets it (or it expires)."""
    ModelVersionFactory(version_number=1, status=Status.CHAMPION)
    first = _health(viewer)

    ModelVersion.objects.filter(version="v1").update(algorithm="xgboost")

    assert _health(viewer) == first


def test_each_tenant_reads_its_own_cached_health(viewer, other_tenant):
    ModelVersionFactory(version_number=1, status=Status.CHAMPION)
    assert _health(viewer)["champion"]["version"] == "v1"

    with tenant_context(other_tenant):
        other_viewer = UserFactory(username="olga", role="viewer")
        ModelVersionFactory(version_number=7, status=Status.CHAMPION)
        other = _health(other_viewer, host=OTHER_HOST)

    assert other["champion"]["version"] == "v7"
    assert _health(viewer)["champion"]["version"] == "v1"
