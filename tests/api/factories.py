"""Factories for API tests: the registry's user and version factories, and alerts raised through
the alert service."""

from alerts.services import raise_alert
from tests.mlops.factories import ModelVersionFactory, UserFactory

__all__ = ["ModelVersionFactory", "UserFactory", "make_alert"]


def make_alert(**overrides):
    """An alert raised through the alert service (as drift detection raises it)."""
    fields = {
        "alert_type": "drift_detected",
        "severity": "critical",
        "title": "Model Drift Detected — 45% MAE Degradation",
        "message": "Champion model performance degraded.",
        "metadata": {"baseline_mae": 12.8, "recent_mae": 18.5, "drift_pct": 45.2},
    }
    fields.update(overrides)
    return raise_alert(**fields)
