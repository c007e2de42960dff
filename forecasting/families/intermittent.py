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
from forecasting.families.inputs import FeatureInputs
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
        return self._forecast_rows(
            self.first_step_inputs(history=history, future_promotion=future_promotion, dates=dates),
            horizon=len(dates),
        )

    def first_step_inputs(
        self, *, history: Panel, future_promotion: np.ndarray, dates: pd.DatetimeIndex
    ) -> FeatureInputs:
        days = int(self._hyperparameters["history_days"])
        # Always `history_days` wide (unknown days before the history are NaN, which the
        # methods skip), so that rows of forecasts made on different days stack.
        recent = np.full((history.n_series, days), np.nan, dtype=np.float32)
        kept = min(days, history.n_days)
        if kept:
            recent[:, days - kept :] = history.quantity[:, history.n_days - kept :]
        # Series the fit did not see get the class of their own history.
        fallback = classify(history.quantity).classes
        classes = np.array(
            [
                self.series_classes.get((str(store), str(product)), fallback[row])
                for row, (store, product) in enumerate(
                    zip(history.stores, history.products, strict=True)
                )
            ],
            dtype=object,
        )
        return FeatureInputs(columns={"own_history": recent}, context={"demand_class": classes})

    def predict_first_step(self, inputs: FeatureInputs) -> np.ndarray:
        return self._forecast_rows(inputs, horizon=1)[:, 0]

    def _forecast_rows(self, inputs: FeatureInputs, *, horizon: int) -> np.ndarray:
        recent = inputs.columns["own_history"]
        forecast = np.full((inputs.n_rows, horizon), np.nan, dtype=np.float32)
        methods: dict[str, Any] = {}
        for row in range(inputs.n_rows):
            known = recent[row][~np.isnan(recent[row])].astype(np.float64)
            if not known.size:
                continue
            demand_class = inputs.context["demand_class"][row]
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
