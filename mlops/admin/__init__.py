"""Tenant admin of model ops: schedules, model versions and their review, retrains, backtests."""

from mlops.admin import (  # noqa: F401  (registers the admins)
    history,
    rollouts,
    schedules,
    versions,
    walk_forward,
)
