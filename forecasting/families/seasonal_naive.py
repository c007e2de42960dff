"""Seasonal naive baseline: each day's forecast is the sale of the same weekday a week earlier."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from forecasting.families.base import ForecastModel, RefitSession
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
        n_series, n_days = history.quantity.shape
        forecast = np.full((n_series, len(dates)), np.nan, dtype=np.float32)
        for step in range(len(dates)):
            # Walk back week by week until a known actual fills every series' forecast.
            for weeks_back in range(1, FALLBACK_WEEKS + 1):
                day = n_days - SEASON_DAYS * weeks_back + (step % SEASON_DAYS)
                if day < 0:
                    break
                missing = np.isnan(forecast[:, step])
                if not missing.any():
                    break
                forecast[missing, step] = history.quantity[missing, day]
        return forecast
