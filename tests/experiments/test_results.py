"""Experiment results when shadow testing has too few days: walk-forward on the champion's days."""

import datetime as dt
import time

import numpy as np
import pytest

from experiments.models import ModelExperiment
from experiments.selectors import experiment_results
from experiments.stored_results import store_experiment_results
from forecasting import backtesting, metrics
from forecasting.selectors import load_sales_panel
from forecasting.synthetic import generate_sales
from mlops.models import ModelVersion
from tenants.selectors import tenant_policy
from tests.experiments.factories import ExperimentFactory, shadow_rows
from tests.forecasting.factories import ProductFactory, StoreFactory
from tests.mlops.factories import ModelVersionFactory, UserFactory, load_sales

# 40 series over 8 months, ending 2025-12-31.
SALES = {"stores": 4, "products": 10, "days": 240, "seed": 5}
QUICK_XGBOOST = {"n_estimators": 30, "max_depth": 4, "calibration_windows": 1}
LAST_DAY = dt.date(2025, 12, 31)
Status = ModelVersion.Status


def version_trained_on(days: int, **fields) -> ModelVersion:
    return ModelVersionFactory(
        training_start=LAST_DAY - dt.timedelta(days=days - 1), training_end=LAST_DAY, **fields
    )


def test_too_few_shadow_days_are_replaced_by_walk_forward_on_the_champions_days():
    load_sales(generate_sales(**SALES))
    champion = version_trained_on(120, status=Status.CHAMPION, algorithm="seasonal_naive")
    experimental = version_trained_on(
        120,
        segment="department:Electronics",
        status=Status.CHALLENGER,
        algorithm="xgboost",
        hyperparameters=QUICK_XGBOOST,
    )
    # Three shadow days with actuals: not enough to judge on.
    shadow_rows(
        version=experimental,
        served_by=champion,
        store=StoreFactory(code="S001"),
        product=ProductFactory(sku="SKU00001"),
        first_day=LAST_DAY - dt.timedelta(days=2),
        actual=[1.0, 2.0, 3.0],
        experimental=[1.0, 2.0, 3.0],
        served=[9.0, 9.0, 9.0],
    )
    experiment = ExperimentFactory(status=ModelExperiment.Status.SHADOW_TESTING)
    experiment.model_versions.add(experimental)

    result = experiment_results(experiment=experiment)["segments"]["department:Electronics"]

    assert result["source"] == "walk_forward"
    assert result["shadow_days_with_actuals"] == 3 < tenant_policy().min_shadow_days
    assert (result["n_days"], result["window"]["end"]) == (28, "2025-12-31")
    assert [each["id"] for each in result["baseline_versions"]] == [champion.pk]
    # The champion's side is seasonal naive on the same Electronics series and days.
    panel = load_sales_panel(departments=["Electronics"])
    windows = backtesting.walk_forward(
        algorithm="seasonal_naive",
        hyperparameters={},
        panel=panel,
        cutoffs=backtesting.weekly_cutoffs(LAST_DAY, days=28, window=7),
    )
    actual = np.concatenate([window.actual for window in windows], axis=1)
    naive = np.concatenate([window.forecast for window in windows], axis=1)
    assert result["n_series"] == panel.n_series
    assert result["baseline"]["mae"] == pytest.approx(metrics.mae(actual, naive), rel=1e-6)
    assert result["experimental"]["mae"] < result["baseline"]["mae"]
    assert result["improvement_pct"]["mae"] > 0


def test_a_version_with_no_other_champion_to_compare_with_has_no_result():
    experimental = version_trained_on(
        120, segment="department:Electronics", status=Status.CHALLENGER
    )
    experiment = ExperimentFactory(status=ModelExperiment.Status.SHADOW_TESTING)
    experiment.model_versions.add(experimental)

    results = experiment_results(experiment=experiment)

    result = results["segments"]["department:Electronics"]
    assert result["source"] == "none"
    assert "no other champion serves department:Electronics" in result["reason"]
    assert result["meets_success_criterion"] is False
    assert results["overall"] is None


def test_results_get_reads_what_a_worker_stored_within_its_query_and_time_budget(
    django_capture_on_commit_callbacks,
):
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.api.clients import client_for

    load_sales(generate_sales(**SALES))
    version_trained_on(120, status=Status.CHAMPION, algorithm="seasonal_naive")
    experimental = version_trained_on(
        120,
        segment="department:Electronics",
        status=Status.CHALLENGER,
        algorithm="xgboost",
        hyperparameters={**QUICK_XGBOOST, "n_estimators": 200, "max_depth": 6},
    )
    experiment = ExperimentFactory(status=ModelExperiment.Status.SHADOW_TESTING)
    experiment.model_versions.add(experimental)
    client = client_for(UserFactory(username="vera", role="viewer"))
    url = f"/api/v1/experiments/{experiment.pk}/results"

    def timed_get():
        started = time.perf_counter()
        with (
            django_capture_on_commit_callbacks(execute=False) as queued,
            CaptureQueriesContext(connection) as queries,
        ):
            response = client.get(url)
        assert response.status_code == 200, response.content
        # django-tenants sets the search path before each query; the others are the budget:
        # host, token, the role's permissions (2), the experiment, its versions, the results.
        statements = [q["sql"] for q in queries if not q["sql"].startswith("SET search_path")]
        assert len(statements) <= 7, statements
        assert all(sql.startswith("SELECT") for sql in statements), statements  # writes nothing
        return response.json(), time.perf_counter() - started, len(queued)

    # A warm web worker, as in production: its code loaded, its cache connection open.
    client.get(f"/api/v1/experiments/{experiment.pk}")
    cache.get("warm-up")
    # No shadow day has its actual: the results refit both recipes over four weeks. The
    # request does not: it answers at once and leaves the work to a worker.
    pending, pending_seconds, queued = timed_get()
    assert (pending["state"], pending["segments"], queued) == ("pending", {}, 1)

    started = time.perf_counter()
    store_experiment_results(experiment=experiment)  # the worker's part
    compute_seconds = time.perf_counter() - started

    stored, stored_seconds, queued = timed_get()
    assert stored["state"] == "current" and queued == 0
    assert stored["segments"]["department:Electronics"]["source"] == "walk_forward"
    # Budget: a quarter of a second; computing takes longer, even on this small panel.
    print(f"GET {pending_seconds:.3f} s, {stored_seconds:.3f} s; compute {compute_seconds:.3f} s")
    assert max(pending_seconds, stored_seconds) < 0.25 < compute_seconds
