"""Experiment results when shadow testing has too few days: walk-forward on the champion's days."""

import datetime as dt

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


def test_a_version_with_no_sales_to_backtest_on_is_stored_as_not_compared_and_says_why():
    ModelVersionFactory(status=Status.CHAMPION, algorithm="seasonal_naive")
    experimental = version_trained_on(
        120, segment="department:Electronics", status=Status.CHALLENGER
    )
    experiment = ExperimentFactory(status=ModelExperiment.Status.SHADOW_TESTING)
    experiment.model_versions.add(experimental)

    stored = store_experiment_results(experiment=experiment)

    result = stored.results["segments"]["department:Electronics"]
    assert result["source"] == "none"
    assert result["reason"] == (
        f"{experimental.version} has 0 shadow day(s) with actuals (needs "
        f"{tenant_policy().min_shadow_days}) and no walk-forward backtest could compare it: "
        "There are no sales to evaluate on."
    )
    assert stored.results["overall"] is None


def test_results_get_reads_what_a_worker_stored_within_its_query_budget_and_refits_nothing(
    django_capture_on_commit_callbacks, monkeypatch
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from experiments import selectors
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
    # Every walk-forward of both recipes, wherever it runs.
    refits = []
    walk_forward_points = selectors.walk_forward_points
    monkeypatch.setattr(
        selectors,
        "walk_forward_points",
        lambda **arguments: refits.append(1) or walk_forward_points(**arguments),
    )

    def get():
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
        return response.json(), len(queued)

    # No shadow day has its actual: the results refit both recipes over four weeks. The
    # request does not: it answers at once and leaves the work to a worker.
    pending, queued = get()
    assert (pending["state"], pending["segments"], queued) == ("pending", {}, 1)
    assert refits == []

    store_experiment_results(experiment=experiment)  # the worker's part
    assert len(refits) == 1

    stored, queued = get()
    assert stored["state"] == "current" and queued == 0
    assert stored["segments"]["department:Electronics"]["source"] == "walk_forward"
    assert len(refits) == 1


def test_a_computation_that_fails_can_be_queued_again_at_once(
    django_capture_on_commit_callbacks, monkeypatch
):
    from experiments import stored_results

    experiment = ExperimentFactory(status=ModelExperiment.Status.SHADOW_TESTING)
    with django_capture_on_commit_callbacks(execute=False):
        assert stored_results.queue_experiment_results(experiment=experiment)
        assert not stored_results.queue_experiment_results(experiment=experiment)

    def fail(**_):
        raise RuntimeError("the worker lost its database connection")

    monkeypatch.setattr(stored_results, "experiment_results", fail)
    with pytest.raises(RuntimeError):
        store_experiment_results(experiment=experiment)

    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert stored_results.queue_experiment_results(experiment=experiment)
    assert len(queued) == 1
