"""Writes of the model registry and arena; the spec's service names, re-exported in one place."""

from mlops.selectors import get_challenger_model, get_champion_model
from mlops.services.backtesting import check_backtest_degradation, run_continuous_backtest
from mlops.services.daily_backtest import backtest_yesterday
from mlops.services.drift import DriftResult, detect_drift, detect_drift_for_champions
from mlops.services.evaluation import evaluate_for_promotion
from mlops.services.forecasting import ForecastRunSummary, forecast_next_days
from mlops.services.lifecycle import (
    ChampionChanged,
    NothingToRollBack,
    archive_version,
    configure_routing,
    make_challenger,
    promote_to_champion,
    reject_model_version,
    rollback_champion,
    start_shadow,
)
from mlops.services.promotion import PromotionDecision, decide_promotion
from mlops.services.registry import load_model, register_model_version
from mlops.services.retraining import (
    queue_retrain,
    queue_scheduled_retrains,
    retrain_forecast_model,
)
from mlops.services.routing import (
    RoutingDecision,
    pin_stores,
    select_model_for_request,
    unpin_stores,
)

__all__ = [
    "ChampionChanged",
    "DriftResult",
    "ForecastRunSummary",
    "NothingToRollBack",
    "PromotionDecision",
    "RoutingDecision",
    "archive_version",
    "backtest_yesterday",
    "check_backtest_degradation",
    "configure_routing",
    "decide_promotion",
    "detect_drift",
    "detect_drift_for_champions",
    "evaluate_for_promotion",
    "forecast_next_days",
    "get_challenger_model",
    "get_champion_model",
    "load_model",
    "make_challenger",
    "pin_stores",
    "promote_to_champion",
    "queue_retrain",
    "queue_scheduled_retrains",
    "reject_model_version",
    "register_model_version",
    "retrain_forecast_model",
    "run_continuous_backtest",
    "rollback_champion",
    "select_model_for_request",
    "start_shadow",
    "unpin_stores",
]
