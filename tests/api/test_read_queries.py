"""Every read endpoint answers in a fixed number of queries, whatever the number of rows behind
it: the tenant's domain, the token with its user, the user's permissions, then one query per
card of the answer (with a page's count where the answer is a list)."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts.models import MLAlert
from experiments.models import ExperimentEvent, ModelExperiment
from forecasting.models import (
    Forecast,
    PlannedPromotion,
    Product,
    Sale,
    SeriesDemandClass,
    Store,
)
from mlops.models import (
    BacktestResult,
    DriftIncident,
    ModelRetrainingLog,
    ModelTransition,
    ModelVersion,
    RoutingOverride,
    Trigger,
)
from tests.api.clients import client_for
from tests.api.factories import ModelVersionFactory, make_alert
from tests.experiments.factories import ExperimentFactory

Status = ModelVersion.Status
MADE_ON = dt.date(2026, 3, 2)


def _transitions(version, count):
    ModelTransition.objects.bulk_create(
        ModelTransition(
            model_version=version,
            from_status=Status.CANDIDATE,
            to_status=Status.CHALLENGER,
            actor_label="system",
            reason=f"step {step}",
        )
        for step in range(count)
    )


def _t_minus_1(version, days):
    BacktestResult.objects.bulk_create(
        BacktestResult(
            model_version=version,
            kind=BacktestResult.Kind.T_MINUS_1,
            window_start=MADE_ON - dt.timedelta(days=day),
            window_end=MADE_ON - dt.timedelta(days=day),
            mae=4.0 + day % 3,
            n_points=10,
        )
        for day in range(1, days + 1)
    )


def populate(rows: int) -> dict:
    """A tenant with `rows` of everything a read shows: versions (each with transitions and T-1
    results) in the global and department segments, forecast runs, alerts, experiments with
    their events and versions, retrains, promotions, sales and drift incidents."""
    store = Store.objects.create(code="S001", name="Main street")
    stores = Store.objects.bulk_create(Store(code=f"S{n:03d}") for n in range(2, rows + 2))
    product = Product.objects.create(sku="TV-55", department="Electronics")
    SeriesDemandClass.objects.create(
        store=store, product=product, demand_class="smooth", adi=1.0, cv2=0.1, as_of=MADE_ON
    )
    champion = ModelVersionFactory(
        version_number=1000, status=Status.CHAMPION, metrics={"mae": 4.0}
    )
    versions = [champion]
    for n in range(rows):
        segment = "global" if n % 2 else f"department:D{n}"
        status = Status.CHALLENGER if n % 3 else Status.SHADOW
        if segment != "global" and n % 4 == 0:
            status = Status.CHAMPION
        versions.append(
            ModelVersionFactory(
                version_number=2000 + n,
                segment=segment,
                status=status,
                routing_mode="shadow",
                last_evaluation={"promote": bool(n % 2), "test": {"confidence": 0.9}},
            )
        )
    pins_to = ModelVersionFactory(version_number=3000, status=Status.CHALLENGER)
    RoutingOverride.objects.bulk_create(
        RoutingOverride(name="demand_forecast", store=each, version=pins_to, reason="pilot")
        for each in stores
    )
    for version in versions:
        _transitions(version, 3)
        _t_minus_1(version, 35)
    for run in range(max(2, rows)):
        made_on = MADE_ON - dt.timedelta(days=run)
        Forecast.objects.bulk_create(
            Forecast(
                model_version=champion,
                store=store,
                product=product,
                made_on=made_on,
                target_date=made_on + dt.timedelta(days=step),
                value=10.0 + step,
                lower=8.0,
                upper=12.0 + step,
                served=True,
            )
            for step in range(7)
        )
    Sale.objects.bulk_create(
        Sale(store=store, product=product, date=MADE_ON - dt.timedelta(days=day), quantity=day)
        for day in range(max(2, rows))
    )
    for week in range(13):
        start = MADE_ON - dt.timedelta(weeks=week + 1)
        BacktestResult.objects.create(
            model_version=champion,
            kind=BacktestResult.Kind.WALK_FORWARD,
            window_start=start,
            window_end=start + dt.timedelta(days=6),
            mae=4.0,
            n_points=7,
        )
    alerts = [
        make_alert(
            severity=MLAlert.Severity.WARNING,
            model_version=version,
            dedup_key=f"alert-{version.pk}",
        )
        for version in versions[: rows + 1]
    ]
    experiments = []
    for _ in range(rows):
        experiment = ExperimentFactory(status=ModelExperiment.Status.IN_PROGRESS)
        experiment.model_versions.set(versions[1 : 1 + min(3, rows)])
        ExperimentEvent.objects.bulk_create(
            ExperimentEvent(
                experiment=experiment,
                from_status="proposed",
                to_status="approved",
                actor_label="maria",
                note=f"step {step}",
            )
            for step in range(3)
        )
        experiments.append(experiment)
    logs = ModelRetrainingLog.objects.bulk_create(
        ModelRetrainingLog(trigger=Trigger.MANUAL, resulting_version=versions[n % len(versions)])
        for n in range(rows)
    )
    PlannedPromotion.objects.bulk_create(
        PlannedPromotion(
            product=product,
            store=stores[n % len(stores)],
            start_date=MADE_ON + dt.timedelta(days=n),
            end_date=MADE_ON + dt.timedelta(days=n + 3),
            known_since=dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
        )
        for n in range(rows)
    )
    DriftIncident.objects.bulk_create(
        DriftIncident(
            champion=champion,
            segment=f"department:X{n}",
            status=DriftIncident.Status.OPEN,
            change_date=MADE_ON,
            opened_on=MADE_ON,
            last_checked_on=MADE_ON,
            challenger=versions[-1],
            alert=alerts[0],
        )
        for n in range(rows)
    )
    return {"alert": alerts[-1], "experiment": experiments[-1], "log": logs[-1]}


# The most queries each read may take, counted as the database sees them: 5 that every
# authenticated read makes (the search path set for the public schema, the tenant's domain, the
# search path set for the tenant, the token with its user, the user's permissions), then the
# view's own: one per card, and a list's count.
READS = {
    "/api/v1/models/health": 9,  # with the canary plans it shows (one more table read)
    "/api/v1/models/history": 8,
    "/api/v1/models/backtest/v1000": 8,
    "/api/v1/models/backtest/v1000?kind=t_minus_1&days=30": 8,
    "/api/v1/models/retraining-log": 7,
    "/api/v1/models/retraining-log/{log}": 6,
    "/api/v1/drift-incidents": 7,
    "/api/v1/ml-alerts": 7,
    "/api/v1/ml-alerts/stats": 6,
    "/api/v1/ml-alerts/{alert}": 6,
    "/api/v1/experiments": 7,
    "/api/v1/experiments/{experiment}": 7,
    "/api/v1/experiments/{experiment}/results": 8,
    "/api/v1/forecasts?store=S001&product=TV-55": 11,
    # The store, the product, the series' sales, the days its store reported, the planned
    # promotions and the forecasts: the same for 2 and 30 forecast runs and days.
    "/api/v1/series/history?store=S001&product=TV-55&start=2026-01-01&end=2026-03-10": 11,
    "/api/v1/promotions": 7,
}


@pytest.mark.parametrize("rows", [2, 30])
@pytest.mark.parametrize("read", list(READS))
def test_each_read_takes_the_same_few_queries_whatever_the_rows(
    read, rows, viewer, django_assert_max_num_queries
):
    made = populate(rows)
    url = read.format(alert=made["alert"].pk, experiment=made["experiment"].pk, log=made["log"].pk)
    client = client_for(viewer)

    with django_assert_max_num_queries(READS[read]):
        response = client.get(url)

    assert response.status_code == 200, response.content


def test_cached_model_health_takes_only_the_requests_own_queries(viewer):
    populate(5)
    client = client_for(viewer)
    first = client.get("/api/v1/models/health").json()

    with CaptureQueriesContext(connection) as queries:
        again = client.get("/api/v1/models/health").json()

    assert again == first
    # The search path (public, then the tenant), the tenant's domain, the token, the permissions.
    assert len(queries) <= 5
