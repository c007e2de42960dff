"""Model families by algorithm name, and a factory for a recipe's model."""

from __future__ import annotations

from typing import Any

from forecasting.families.base import ForecastModel, Forecasts
from forecasting.families.intermittent import IntermittentModel
from forecasting.families.lstm import LSTMModel
from forecasting.families.seasonal_naive import SeasonalNaiveModel
from forecasting.families.xgboost_family import XGBoostModel

FAMILIES: dict[str, type[ForecastModel]] = {
    SeasonalNaiveModel.algorithm: SeasonalNaiveModel,
    XGBoostModel.algorithm: XGBoostModel,
    LSTMModel.algorithm: LSTMModel,
    IntermittentModel.algorithm: IntermittentModel,
}


def family(algorithm: str) -> type[ForecastModel]:
    """The model class of an algorithm name; raises ValueError for an unknown one."""
    try:
        return FAMILIES[algorithm]
    except KeyError:
        raise ValueError(
            f"unknown algorithm {algorithm!r}; known: {', '.join(sorted(FAMILIES))}"
        ) from None


def build_model(algorithm: str, **hyperparameters: Any) -> ForecastModel:
    """An unfitted model of `algorithm` with the given hyperparameters over its defaults."""
    return family(algorithm)(**hyperparameters)


__all__ = ["FAMILIES", "ForecastModel", "Forecasts", "build_model", "family"]
