"""A demand class as a segment: the arena judges a slow-mover recipe on that class's series."""

import numpy as np

from forecasting.demand_classes import classify
from forecasting.selectors import load_sales_panel
from mlops.models import ModelRetrainingLog, ModelVersion, Trigger
from mlops.services import retrain_forecast_model

Status = ModelVersion.Status


def test_a_class_segment_candidate_is_trained_and_judged_on_its_class_only(sales):
    champion = retrain_forecast_model(
        trigger=Trigger.SCHEDULED, algorithm="seasonal_naive", window_days=120
    ).resulting_version

    log = retrain_forecast_model(
        trigger=Trigger.MANUAL,
        segment="class:intermittent",
        algorithm="intermittent",
        window_days=120,
    )

    assert log.status == ModelRetrainingLog.Status.SUCCEEDED, log.error
    version = log.resulting_version
    assert version.segment == "class:intermittent" and version.algorithm == "intermittent"
    panel = load_sales_panel(start=version.training_start, end=version.training_end)
    intermittent = int(classify(panel.quantity).of("intermittent").sum())
    assert 0 < intermittent < panel.n_series
    # Judged against the champion that serves those series now, on those series alone.
    evaluation = version.last_evaluation
    assert evaluation["n_series"] == intermittent
    assert evaluation["champion"]["version"] == champion.version
    assert version.status in (Status.CHAMPION, Status.CHALLENGER, Status.ARCHIVED)
    assert np.isfinite(version.metrics["mae"])
