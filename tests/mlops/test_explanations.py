"""Explanations of served forecasts and the global importance versions are trained with: the
exact contributions add up to what is served, and a retrain stores the version's importance."""

import datetime as dt

import numpy as np
import pytest

from forecasting.artifacts import serialize
from forecasting.families import build_model
from forecasting.features import model_features
from forecasting.models import Forecast
from forecasting.panel import Panel
from forecasting.synthetic import generate_sales
from mlops.explanation_selectors import explain_served_forecast
from mlops.models import ModelRetrainingLog, Trigger
from mlops.services import retrain_forecast_model
from tests.mlops.conftest import QUICK_XGBOOST
from tests.mlops.factories import load_sales, serve_forecasts

# 20 series: a week of forecasts is 140 served forecasts to draw 100 from.
SERIES = {"stores": 4, "products": 5, "days": 120, "seed": 9}
DAY = dt.date(2026, 1, 1)  # the day after the generated sales end

# Every feature of the model: the test tenant has no holiday region, so no holiday features.
TENANT_FEATURES = model_features(None)


@pytest.fixture(scope="module")
def frame():
    return generate_sales(**SERIES)


@pytest.fixture(scope="module")
def artifact(frame):
    return serialize(build_model("xgboost", **QUICK_XGBOOST).fit(Panel.from_frame(frame)))


def test_contributions_of_100_random_served_forecasts_add_up_to_what_is_served(frame, artifact):
    load_sales(frame)
    version = serve_forecasts(artifact=artifact, panel=Panel.from_frame(frame), day=DAY)
    served = list(Forecast.objects.filter(served=True).select_related("store", "product"))
    assert len(served) >= 100
    picked = np.random.default_rng(4).choice(len(served), 100, replace=False)

    for index in picked:
        forecast = served[index]
        explanation = explain_served_forecast(
            store=forecast.store, product=forecast.product, target_date=forecast.target_date
        )

        contributions = [each.contribution for each in explanation.contributions]
        assert explanation.version == version
        assert explanation.forecast.pk == forecast.pk
        # A squared-error model works in units: nothing between its output and the forecast.
        assert explanation.output_space == "identity" and explanation.output_steps == []
        assert abs(explanation.base_value + sum(contributions) - forecast.value) <= 1e-3
        assert explanation.reproduced
        assert sorted(each.feature for each in explanation.contributions) == sorted(TENANT_FEATURES)
        magnitudes = [abs(value) for value in contributions]
        assert magnitudes == sorted(magnitudes, reverse=True)
    # The forecasts picked reach across the week (recursive steps read earlier forecasts).
    assert len({served[index].target_date for index in picked}) == 7


def test_a_retrain_stores_the_versions_global_importance(sales):
    log = retrain_forecast_model(
        trigger=Trigger.SCHEDULED,
        algorithm="xgboost",
        hyperparameters=QUICK_XGBOOST,
        window_days=150,
    )

    assert log.status == ModelRetrainingLog.Status.SUCCEEDED, log.error
    importance = log.resulting_version.importance
    permutation = importance["permutation"]
    assert permutation["method"] == "permutation" and permutation["metric"] == "mae_increase"
    # Measured on the week its interval calibration held out: the last week it trained on.
    assert permutation["held_out"] == "interval_calibration"
    assert permutation["window"] == {
        "start": (log.data_end - dt.timedelta(days=6)).isoformat(),
        "end": log.data_end.isoformat(),
        "days": 7,
    }
    assert sorted(row["feature"] for row in permutation["features"]) == sorted(TENANT_FEATURES)
    importances = [row["importance"] for row in permutation["features"]]
    assert importances == sorted(importances, reverse=True) and importances[0] > 0
    contributions = importance["mean_abs_contribution"]
    assert contributions["method"] == "tree_shap" and contributions["space"] == "identity"
    assert contributions["rows"] <= 500
    assert importance["seconds"] > 0
