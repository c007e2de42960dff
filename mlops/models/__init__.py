"""Model registry: versions and their audited lifecycle, retrains, shadow predictions, backtests.

One module per part: `registry` (versions, their transitions, retrains, routing), `evaluation`
(shadow predictions, backtest windows), `drift` (drift incidents) and `rollouts` (canary plans) and `walk_forward` (walk-forwards spread over workers).
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
from mlops.models.rollouts import (
    GUARDRAIL_METRICS,
    RolloutEvent,
    RolloutPlan,
    RolloutSeries,
    validate_plan,
)
from mlops.models.walk_forward import WalkForwardRun, WalkForwardWindow

# The tenant-admin view of beat rows is defined beside the default schedules.
from mlops.schedules import TenantSchedule  # noqa: E402

__all__ = [
    "DEFAULT_MODEL_NAME",
    "GLOBAL_SEGMENT",
    "GUARDRAIL_METRICS",
    "REVIEWED_TRIGGERS",
    "BacktestResult",
    "DecisionKind",
    "DriftIncident",
    "ModelRetrainingLog",
    "ModelTransition",
    "ModelVersion",
    "RolloutEvent",
    "RolloutPlan",
    "RolloutSeries",
    "RoutingOverride",
    "ShadowPrediction",
    "TenantSchedule",
    "Trigger",
    "artifact_path",
    "segment_label",
    "validate_plan",
    "WalkForwardRun",
    "WalkForwardWindow",
    "validate_segment",
]
