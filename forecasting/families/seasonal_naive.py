"""Seasonal naive baseline: each day's forecast is the sale of the same weekday a week earlier."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from forecasting.families.base import ForecastModel, RefitSession
from forecasting.families.inputs import FeatureInputs
from forecasting.panel import Panel

SEASON_DAYS = 7
# When last week's same weekday is unknown (store did not report), look this many weeks back.
FALLBACK_WEEKS = 4


class SeasonalNaiveModel(ForecastModel):
    """Forecast of day d = actual of the last known same weekday before the cutoff."""

    algorithm: ClassVar[str] = "seasonal_naive"

    @property
    def features(self) -> list[str]:
        return ["same_weekday_last_week"]

    def _fit_point(self, panel: Panel, session: RefitSession | None = None) -> None:
        """Nothing to learn."""

    def _predict_point(
        self, *, history: Panel, future_promotion: np.ndarray, dates: pd.DatetimeIndex
    ) -> np.ndarray:
        forecast = np.full((history.n_series, len(dates)), np.nan, dtype=np.float32)
        for step in range(len(dates)):
            forecast[:, step] = _same_weekday_before(history, step)
        return forecast

    def first_step_inputs(
        self, *, history: Panel, future_promotion: np.ndarray, dates: pd.DatetimeIndex
    ) -> FeatureInputs:
        return FeatureInputs(columns={"same_weekday_last_week": _same_weekday_before(history, 0)})

    def predict_first_step(self, inputs: FeatureInputs) -> np.ndarray:
        return inputs.columns["same_weekday_last_week"]


def _same_weekday_before(history: Panel, step: int) -> np.ndarray:
    """Each series' actual of the last known same weekday as the day `step` days after the
    history ends, walking back week by week (NaN when none is known)."""
    n_series, n_days = history.quantity.shape
    forecast = np.full(n_series, np.nan, dtype=np.float32)
    for weeks_back in range(1, FALLBACK_WEEKS + 1):
        day = n_days - SEASON_DAYS * weeks_back + (step % SEASON_DAYS)
        if day < 0:
            break
        missing = np.isnan(forecast)
        if not missing.any():
            break
        forecast[missing] = history.quantity[missing, day]
    return forecast
