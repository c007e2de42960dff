"""Retrain outcomes raise the alerts people act on: promotion pending, retrain failed."""

import pytest

from alerts.models import MLAlert
from forecasting.synthetic import generate_sales
from mlops.models import ModelRetrainingLog
from mlops.services.review import notify_retrain_outcome
from tests.mlops.factories import ModelVersionFactory, load_sales

DRIFT = {"baseline_mae": 12.8, "recent_mae": 18.5, "drift_pct": 44.5, "window": [1, 2]}
EVALUATION = {
    "promote": True,
    "reason": "MAE and MAPE improve by more than 5% with confidence 0.97.",
    "candidate_metrics": {"mae": 11.2, "mape": 21.0},
    "champion_metrics": {"mae": 12.8, "mape": 24.0},
    "improvement": {"mae_pct": 12.5, "mape_pct": 12.5},
    "test": {"confidence": 0.97},
}


def finished_retrain(*, trigger, version=None, status="succeeded", error=""):
    return ModelRetrainingLog.objects.create(
        trigger=trigger,
        trigger_metadata=DRIFT if trigger == "drift_detected" else {},
        status=status,
        attempts=1,
        resulting_version=version,
        outcome="challenger" if version else "",
        error=error,
    )


@pytest.mark.parametrize("trigger", ["drift_detected", "new_products"])
def test_reviewed_retrain_that_made_a_challenger_raises_promotion_pending(trigger, champion):
    challenger = ModelVersionFactory(
        version_number=13, status="challenger", trigger=trigger, last_evaluation=EVALUATION
    )

    alert = notify_retrain_outcome(log=finished_retrain(trigger=trigger, version=challenger))

    assert alert.alert_type == "promotion_pending"
    assert alert.severity == "warning"
    assert alert.requires_action == "yes"
    assert alert.model_version == challenger
    assert alert.title == "Promotion pending: demand_forecast v13 awaits review (MAE 12.5% better)"
    assert "beside champion v12" in alert.message
    assert "confidence 0.97" in alert.message
    assert alert.metadata["challenger_mae"] == 11.2
    assert alert.metadata["champion_mae"] == 12.8
    assert alert.metadata["champion_version"] == "v12"
    if trigger == "drift_detected":
        assert alert.metadata["drift_pct"] == 44.5
        assert "window" not in alert.metadata  # nested values stay on the retrain log


def test_scheduled_retrain_raises_nothing(champion):
    kept = ModelVersionFactory(version_number=13, status="challenger", trigger="scheduled")
    assert notify_retrain_outcome(log=finished_retrain(trigger="scheduled", version=kept)) is None
    assert not MLAlert.objects.exists()


def test_failed_retrain_raises_retrain_failed_once_per_model():
    first = finished_retrain(trigger="scheduled", status="failed", error="ValueError: no sales")
    second = finished_retrain(trigger="manual", status="failed", error="ValueError: no sales")

    alert = notify_retrain_outcome(log=first)
    again = notify_retrain_outcome(log=second)

    assert again.pk == alert.pk
    again.refresh_from_db()
    assert again.alert_type == "retrain_failed"
    assert again.severity == "warning"
    assert again.occurrences == 2
    assert again.metadata["error"] == "ValueError: no sales"
    assert "ValueError: no sales" in again.message


def test_retrain_task_without_sales_raises_retrain_failed():
    from mlops.tasks import retrain_model

    log = ModelRetrainingLog.objects.create(trigger="drift_detected", trigger_metadata=DRIFT)

    retrain_model.apply(args=[log.pk])

    log.refresh_from_db()
    assert log.status == "failed"
    [alert] = MLAlert.objects.all()
    assert alert.alert_type == "retrain_failed"
    assert alert.metadata["retrain_log_id"] == log.pk
    assert alert.metadata["drift_pct"] == 44.5


def test_drift_retrain_task_that_trains_a_challenger_raises_promotion_pending():
    from mlops.tasks import retrain_model

    load_sales(generate_sales(stores=2, products=3, days=120, seed=7))
    log = ModelRetrainingLog.objects.create(
        trigger="drift_detected",
        trigger_metadata=DRIFT,
        algorithm="seasonal_naive",
        window_days=60,
    )

    retrain_model.apply(args=[log.pk])

    log.refresh_from_db()
    assert (log.status, log.outcome) == ("succeeded", "challenger"), log.error
    [alert] = MLAlert.objects.all()
    assert alert.alert_type == "promotion_pending"
    assert alert.model_version == log.resulting_version
    assert alert.metadata["recent_mae"] == 18.5
