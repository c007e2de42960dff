"""Writes of the experiment workflow: propose, review, train, shadow-test and decide.

One module per step: `lifecycle` (permissions, moves and the experiment's log), `proposal`
(propose, approve, reject), `training` (start, train, shadow-test) and `completion` (the
adoption gate and the decision).
"""

from experiments.services.completion import (
    ARCHIVE_PERMISSION,
    PROMOTE_PERMISSION,
    adoption_gate,
    complete_experiment,
)
from experiments.services.lifecycle import (
    APPROVE_PERMISSION,
    PROPOSE_PERMISSION,
    RUN_PERMISSION,
    allowed_moves,
    require_permission,
)
from experiments.services.proposal import (
    CONFIGURATION_KEYS,
    MAX_WINDOW_DAYS,
    MIN_WINDOW_DAYS,
    approve_experiment,
    clean_configuration,
    feature_selecting_families,
    propose_experiment,
    reject_experiment,
)
from experiments.services.training import (
    ExperimentStartRunningError,
    ExperimentTrainingError,
    TrainingPlan,
    begin_experiment_training,
    finish_experiment_training,
    queue_start_experiment,
    start_experiment,
    start_interrupted,
    start_shadow_testing,
    train_experiment_segment,
    training_plan,
)

__all__ = [
    "APPROVE_PERMISSION",
    "ARCHIVE_PERMISSION",
    "CONFIGURATION_KEYS",
    "MAX_WINDOW_DAYS",
    "MIN_WINDOW_DAYS",
    "PROMOTE_PERMISSION",
    "PROPOSE_PERMISSION",
    "RUN_PERMISSION",
    "ExperimentStartRunningError",
    "ExperimentTrainingError",
    "TrainingPlan",
    "adoption_gate",
    "allowed_moves",
    "approve_experiment",
    "clean_configuration",
    "complete_experiment",
    "feature_selecting_families",
    "propose_experiment",
    "begin_experiment_training",
    "finish_experiment_training",
    "queue_start_experiment",
    "reject_experiment",
    "require_permission",
    "start_experiment",
    "start_interrupted",
    "start_shadow_testing",
    "train_experiment_segment",
    "training_plan",
]
