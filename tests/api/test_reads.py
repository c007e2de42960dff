"""Reads without side effects: a thousand GETs over every read endpoint leave every table of
the tenant exactly as it was."""

import datetime as dt
import itertools

import pytest
from django.db import connection

from alerts.models import MLAlert
from experiments.models import ModelExperiment
from forecasting.models import Forecast, PlannedPromotion, Product, Store
from mlops.models import BacktestResult, ModelRetrainingLog, ModelVersion, Trigger
from tests.api.clients import client_for
from tests.api.factories import ModelVersionFactory, make_alert
from tests.experiments.factories import ExperimentFactory

MADE_ON = dt.date(2026, 3, 2)


def _tenant_checksums() -> dict[str, tuple[int, str]]:
    """Every table of the tenant's schema: its row count and a digest of all its rows."""
    schema = connection.schema_name
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", [schema])
        tables = sorted(name for (name,) in cursor.fetchall())
        sums = {}
        for table in tables:
            cursor.execute(
                f"SELECT count(*), coalesce(md5(string_agg(md5(t::text), '' ORDER BY "
                f'md5(t::text))), \'\') FROM "{schema}"."{table}" t'
            )
            sums[table] = cursor.fetchone()
    return sums


@pytest.fixture
def served_tenant():
    """Something behind every read: forecasts of a champion and its shadow, walk-forward
    windows, alerts, experiments, a retrain log and a planned promotion."""
    store = Store.objects.create(code="S001", name="Main street")
    product = Product.objects.create(sku="TV-55", department="Electronics")
    champion = ModelVersionFactory(version_number=12, status=ModelVersion.Status.CHAMPION)
    shadow = ModelVersionFactory(version_number=15, status=ModelVersion.Status.SHADOW)
    for version, served in ((champion, True), (shadow, False)):
        Forecast.objects.bulk_create(
            Forecast(
                model_version=version,
                store=store,
                product=product,
                made_on=MADE_ON,
                target_date=MADE_ON + dt.timedelta(days=step),
                value=10.0 + step,
                lower=8.0,
                upper=12.0 + step,
                served=served,
            )
            for step in range(7)
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
    alert = make_alert(severity=MLAlert.Severity.WARNING, model_version=champion)
    proposed = ExperimentFactory()
    running = ExperimentFactory(status=ModelExperiment.Status.IN_PROGRESS)
    log = ModelRetrainingLog.objects.create(trigger=Trigger.MANUAL)
    PlannedPromotion.objects.create(
        product=product,
        start_date=MADE_ON,
        end_date=MADE_ON + dt.timedelta(days=3),
        known_since=dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
    )
    return {"alert": alert, "experiments": [proposed, running], "log": log}


@pytest.mark.slow
def test_a_thousand_reads_change_no_table_of_the_tenant(viewer, manager, served_tenant):
    experiment_ids = [experiment.pk for experiment in served_tenant["experiments"]]
    reads = [
        "/api/v1/forecasts?store=S001&product=TV-55",
        "/api/v1/forecasts?store=S001&product=TV-55&days=3",
        "/api/v1/series/history?store=S001&product=TV-55&start=2026-02-20&end=2026-03-10",
        "/api/v1/models/health",
        "/api/v1/models/history",
        "/api/v1/models/backtest/v12",
        "/api/v1/models/backtest/v12?kind=t_minus_1",
        "/api/v1/models/retraining-log",
        f"/api/v1/models/retraining-log/{served_tenant['log'].pk}",
        "/api/v1/ml-alerts",
        "/api/v1/ml-alerts/stats",
        f"/api/v1/ml-alerts/{served_tenant['alert'].pk}",
        "/api/v1/experiments",
        *(f"/api/v1/experiments/{pk}" for pk in experiment_ids),
        *(f"/api/v1/experiments/{pk}/results" for pk in experiment_ids),
        "/api/v1/promotions",
        "/api/v1/drift-incidents",
    ]
    clients = [client_for(viewer), client_for(manager)]
    before = _tenant_checksums()

    answered = []
    for url, client in zip(
        itertools.islice(itertools.cycle(reads), 1000), itertools.cycle(clients)
    ):
        answered.append(client.get(url).status_code)

    assert answered.count(200) == 1000, sorted(set(zip(reads, answered, strict=False)))
    after = _tenant_checksums()
    changed = {
        table: (before[table], after[table]) for table in before if before[table] != after[table]
    }
    assert changed == {}
    assert before.keys() == after.keys() and len(before) > 20
