"""Tenant admin of model ops: schedules, model versions and their review, retrains, backtests."""

from mlops.admin import history, rollouts, schedules, versions  # noqa: F401  (registers the admins)
