"""Demand classes (Syntetos-Boylan) and the statsforecast family for slow movers."""

import io
import zipfile

import numpy as np
import pandas as pd
import pytest
from statsforecast.models import TSB, CrostonSBA

from forecasting.demand_classes import classify
from forecasting.families import build_model
from forecasting.families.intermittent import IntermittentModel
from forecasting.panel import Panel
from forecasting.synthetic import generate_sales

pytestmark = pytest.mark.nodb


def test_classes_follow_the_adi_and_cv2_cutoffs():
    nan = np.nan
    history = np.array(
        [
            [4, 5, 4, 5, 4, 5],  # sells every day, sizes steady: smooth
            [1, 9, 1, 9, 1, 9],  # every day, CV² = (4 / 5)² = 0.64: erratic
            [0, 3, 0, 0, 3, 0],  # ADI 6 / 2 = 3, CV² 0: intermittent
            [0, 1, 0, 0, 9, 0],  # ADI 3, CV² 0.64: lumpy
            [0, 0, nan, 0, 0, 0],  # nothing sold: intermittent (ADI infinite)
            [4, nan, nan, 4, 0, 4],  # unknown days are left out: ADI 4 / 3 = 1.33
        ],
        dtype=np.float32,
    )
    found = classify(history)
    assert found.classes.tolist() == [
        "smooth",
        "erratic",
        "intermittent",
        "lumpy",
        "intermittent",
        "intermittent",
    ]
    np.testing.assert_allclose(found.adi[:4], [1.0, 1.0, 3.0, 3.0])
    np.testing.assert_allclose(found.cv2[:4], [1 / 81, 0.64, 0.0, 0.64], rtol=1e-6)
    assert np.isinf(found.adi[4])


def _slow_panel() -> Panel:
    rng = np.random.default_rng(4)
    days = 120
    quantity = np.stack(
        [
            rng.poisson(0.3, days),  # intermittent
            # Lumpy: a sale every fifth day, of 1, 1 or 12 units (CV² 1.24).
            np.where(np.arange(days) % 5 == 0, np.resize([1, 1, 12], days), 0),
            rng.poisson(6.0, days),  # smooth
        ]
    ).astype(np.float32)
    return Panel(
        stores=np.array(["S1", "S1", "S1"], dtype=object),
        products=np.array(["A", "B", "C"], dtype=object),
        departments=np.array(["Grocery"] * 3, dtype=object),
        dates=pd.date_range("2025-01-01", periods=days, name="date"),
        quantity=quantity,
        on_promotion=np.zeros_like(quantity),
    )


def test_each_series_is_forecast_by_its_class_method_and_the_artifact_is_plain_json():
    panel = _slow_panel()
    start = panel.dates[-7]
    model = build_model("intermittent").fit(panel.until(start))
    assert model.series_classes == {
        ("S1", "A"): "intermittent",
        ("S1", "B"): "lumpy",
        ("S1", "C"): "smooth",
    }
    forecasts = model.predict(panel, start, horizon=7)
    history = panel.until(start).quantity.astype(np.float64)
    np.testing.assert_allclose(
        forecasts.values[0], CrostonSBA().forecast(y=history[0], h=7)["mean"], rtol=1e-6
    )
    np.testing.assert_allclose(
        forecasts.values[1],
        TSB(alpha_d=0.1, alpha_p=0.1).forecast(y=history[1], h=7)["mean"],
        rtol=1e-6,
    )
    assert (forecasts.lower <= forecasts.values + 1e-6).all() and model.calibration is not None

    restored = IntermittentModel.from_bytes(model.to_bytes())
    assert restored.series_classes == model.series_classes
    np.testing.assert_array_equal(restored.predict(panel, start).values, forecasts.values)

    names = zipfile.ZipFile(io.BytesIO(model.to_bytes())).namelist()
    assert names == ["manifest.json"]  # no pickle, no binary state: the classes are JSON


def test_the_family_walks_forward_on_generated_sales():
    from forecasting.backtesting import walk_forward, weekly_cutoffs

    panel = Panel.from_frame(generate_sales(stores=2, products=10, days=200, seed=9))
    windows = walk_forward(
        algorithm="intermittent",
        hyperparameters={},
        panel=panel,
        cutoffs=weekly_cutoffs(panel.last_day, days=14),
    )
    assert len(windows) == 2
    assert all(w.metrics["coverage"] == 1.0 and w.metrics["interval_coverage"] for w in windows)


def test_a_class_segment_recipe_trains_on_and_forecasts_the_series_of_its_class():
    from mlops.services.evaluation import Recipe

    panel = _slow_panel()
    recipe = Recipe(
        algorithm="intermittent", hyperparameters={}, window_days=120, segment="class:lumpy"
    )
    assert recipe.series_mask(panel).tolist() == [False, True, False]
