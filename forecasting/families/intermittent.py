"""Croston-type forecasts for slow movers, from Nixtla's statsforecast, one method per demand
class: SBA for intermittent series, TSB for lumpy ones (it lets the demand probability decay,
so an item that stopped selling stops being forecast), IMAPA for erratic and ADIDA for smooth.

Each series is forecast from its own recent history at the forecast origin (these methods are
a few smoothed numbers of the history, refitted in microseconds), so what a fit learns and the
artifact keeps is each series' demand class, read from its training days, as JSON.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from statsforecast.models import ADIDA, IMAPA, TSB, CrostonSBA

from forecasting.demand_classes import ERRATIC, INTERMITTENT, LUMPY, SMOOTH, classify
from forecasting.families.base import ForecastModel, RefitSession
from forecasting.panel import Panel


class IntermittentModel(ForecastModel):
    """Per series: its demand class (Syntetos-Boylan) picks the statsforecast method."""

    algorithm: ClassVar[str] = "intermittent"
    known_inputs: ClassVar[tuple[str, ...]] = ()
    default_hyperparameters: ClassVar[dict[str, Any]] = {
        "history_days": 364,  # days of history each forecast reads
        "tsb_alpha_demand": 0.1,
        "tsb_alpha_probability": 0.1,
    }

    def __init__(self, **hyperparameters: Any) -> None:
        super().__init__(**hyperparameters)
        self.series_classes: dict[tuple[str, str], str] = {}

    @property
    def features(self) -> list[str]:
        return ["own_history"]

    def method_for(self, demand_class: str):
        """The statsforecast model that serves a demand class."""
        if demand_class == LUMPY:
            return TSB(
                alpha_d=float(self._hyperparameters["tsb_alpha_demand"]),
                alpha_p=float(self._hyperparameters["tsb_alpha_probability"]),
            )
        return {INTERMITTENT: CrostonSBA, ERRATIC: IMAPA, SMOOTH: ADIDA}[demand_class]()

    def _fit_point(self, panel: Panel, session: RefitSession | None = None) -> None:
        classes = classify(panel.quantity).classes
        self.series_classes = {
            (str(store), str(product)): str(demand_class)
            for store, product, demand_class in zip(
                panel.stores, panel.products, classes, strict=True
            )
        }

    def _predict_point(
        self, *, history: Panel, future_promotion: np.ndarray, dates: pd.DatetimeIndex
    ) -> np.ndarray:
        horizon = len(dates)
        recent = history.quantity[:, -int(self._hyperparameters["history_days"]) :]
        # Series the fit did not see get the class of their own history.
        fallback = classify(history.quantity).classes
        forecast = np.full((history.n_series, horizon), np.nan, dtype=np.float32)
        methods: dict[str, Any] = {}
        for row in range(history.n_series):
            known = recent[row][~np.isnan(recent[row])].astype(np.float64)
            if not known.size:
                continue
            key = (str(history.stores[row]), str(history.products[row]))
            demand_class = self.series_classes.get(key, fallback[row])
            if demand_class not in methods:
                methods[demand_class] = self.method_for(demand_class)
            if not known.any():
                forecast[row] = 0.0
                continue
            forecast[row] = methods[demand_class].forecast(y=known, h=horizon)["mean"]
        return forecast

    def _state_metadata(self) -> dict[str, Any]:
        keys = sorted(self.series_classes)
        return {
            "stores": [store for store, _ in keys],
            "products": [product for _, product in keys],
            "classes": [self.series_classes[key] for key in keys],
        }

    def _load_state(self, *, metadata: dict[str, Any], blobs: dict[str, bytes]) -> None:
        self.series_classes = {
            (store, product): demand_class
            for store, product, demand_class in zip(
                metadata["stores"], metadata["products"], metadata["classes"], strict=True
            )
        }
