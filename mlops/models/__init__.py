"""Model registry: versions and their audited lifecycle, retrains, shadow predictions, backtests.

One module per part: `registry` (versions, their transitions, retrains, routing), `evaluation`
(shadow predictions, backtest windows) and `drift` (drift incidents).
"""

from mlops.models.drift import DriftIncident
from mlops.models.evaluation import BacktestResult, ShadowPrediction
from mlops.models.registry import (
    DEFAULT_MODEL_NAME,
    GLOBAL_SEGMENT,
    REVIEWED_TRIGGERS,
    DecisionKind,
    ModelRetrainingLog,
    ModelTransition,
    ModelVersion,
    RoutingOverride,
    Trigger,
    artifact_path,
    segment_label,
    validate_segment,
)

# The tenant-admin view of beat rows is defined beside the default schedules.
from mlops.schedules import TenantSchedule  # noqa: E402

__all__ = [
    "DEFAULT_MODEL_NAME",
    "GLOBAL_SEGMENT",
    "REVIEWED_TRIGGERS",
    "BacktestResult",
    "DecisionKind",
    "DriftIncident",
    "ModelRetrainingLog",
    "ModelTransition",
    "ModelVersion",
    "RoutingOverride",
    "ShadowPrediction",
    "TenantSchedule",
    "Trigger",
    "artifact_path",
    "segment_label",
    "validate_segment",
]
