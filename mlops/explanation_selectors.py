"""Reads that explain a served forecast feature by feature (exact contributions), and the global
importance a version was trained with. A read: nothing here writes."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from forecasting.families import family
from forecasting.families.inputs import LOG_LINK, ForecastContributions
from forecasting.models import Forecast, Product, Store
from forecasting.panel import Panel
from forecasting.selectors import load_sales_panel, with_promotion_calendar
from mlops.models import DEFAULT_MODEL_NAME, ModelVersion
from mlops.selectors import served_forecast
from mlops.services.data import FORECAST_HISTORY_DAYS
from mlops.services.registry import load_model

# The contributions explain the served value when the forecast they add up to (through the
# output steps) is within this of it: float32 trees, summed in float64.
REPRODUCED_WITHIN = 1e-3


class NoServedForecastError(Exception):
    """No forecast was served for the series on that day."""


class NoExactContributionsError(Exception):
    """The serving version's family has no exact per-feature contributions."""

    def __init__(self, version: ModelVersion) -> None:
        super().__init__(
            f"{version.version} is a {version.algorithm} model, which has no exact per-feature "
            "contributions; its global permutation importance is given instead."
        )
        self.version = version


class HistoryUnavailableError(Exception):
    """The sales the forecast was made from are no longer there to explain it with."""

    def __init__(self, message: str, *, version: ModelVersion) -> None:
        super().__init__(message)
        self.version = version


@dataclass(frozen=True)
class FeatureContribution:
    feature: str
    value: float | None  # None: unknown (a lag before the series' first sale)
    contribution: float


@dataclass(frozen=True)
class OutputStep:
    """One step from the model's raw output to the forecast served, with the value after it."""

    step: str  # "exp", "floor_at_zero" or "store_closed"
    description: str
    result: float


@dataclass(frozen=True)
class ForecastExplanation:
    forecast: Forecast
    version: ModelVersion
    output_space: str  # the model's output: "identity" (units) or "log"
    base_value: float
    contributions: list[FeatureContribution]  # largest |contribution| first
    model_output: float  # base_value + the sum of the contributions
    output_steps: list[OutputStep]
    explained_prediction: float
    reproduced: bool

    @property
    def days_ahead(self) -> int:
        return (self.forecast.target_date - self.forecast.made_on).days


def series_panel_as_made(*, forecast: Forecast) -> Panel:
    """The series' sales as the daily forecast made on `forecast.made_on` saw them: the days
    before it, the target days' promotions as planned by then. Raises HistoryUnavailableError."""
    made_on = forecast.made_on
    sales = load_sales_panel(
        start=made_on - dt.timedelta(days=FORECAST_HISTORY_DAYS),
        end=made_on - dt.timedelta(days=1),
        stores=[forecast.store.code],
        products=[forecast.product.sku],
    )
    if sales.n_series != 1 or forecast.target_date < made_on:
        raise HistoryUnavailableError(
            f"No sales of {forecast.product.sku} at {forecast.store.code} in the "
            f"{FORECAST_HISTORY_DAYS} days before {made_on} are left to explain this forecast.",
            version=forecast.model_version,
        )
    return with_promotion_calendar(sales, end=forecast.target_date).as_seen_at(made_on)


def _output_steps(explained: ForecastContributions) -> list[OutputStep]:
    """The steps from the model's raw output to the value served, in order, each with the
    value after it (none: the raw output is the forecast)."""
    steps = []
    value = float(explained.model_output[0])
    if explained.link == LOG_LINK:
        value = math.exp(value)
        steps.append(OutputStep("exp", "The model works in log units: exp of its output", value))
    if value < 0:
        value = 0.0
        steps.append(OutputStep("floor_at_zero", "A negative output is served as zero", value))
    if explained.closed:
        value = 0.0
        steps.append(OutputStep("store_closed", "The stores close that day: zero is served", value))
    return steps


def _known(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def explain_served_forecast(
    *, store: Store, product: Product, target_date: dt.date, name: str = DEFAULT_MODEL_NAME
) -> ForecastExplanation:
    """The exact per-feature contributions to the forecast served for the series on that day,
    recomputed from the serving version's artifact and the sales it was made from. Raises
    NoServedForecastError, NoExactContributionsError (for families without them) and
    HistoryUnavailableError."""
    forecast = served_forecast(store=store, product=product, target_date=target_date, name=name)
    if forecast is None:
        raise NoServedForecastError(
            f"No forecast of {product.sku} at {store.code} for {target_date} was served."
        )
    version = forecast.model_version
    if not family(version.algorithm).exact_contributions:
        raise NoExactContributionsError(version)
    panel = series_panel_as_made(forecast=forecast)
    explained = load_model(version).explain(
        panel, forecast.made_on, step=(target_date - forecast.made_on).days
    )
    contributions = explained.contributions[0].astype(np.float64)
    order = sorted(range(len(contributions)), key=lambda index: -abs(contributions[index]))
    steps = _output_steps(explained)
    model_output = float(explained.model_output[0])
    explained_prediction = steps[-1].result if steps else model_output
    return ForecastExplanation(
        forecast=forecast,
        version=version,
        output_space=explained.link,
        base_value=float(explained.base_value[0]),
        contributions=[
            FeatureContribution(
                feature=explained.features[index],
                value=_known(explained.values[0, index]),
                contribution=float(contributions[index]),
            )
            for index in order
        ],
        model_output=model_output,
        output_steps=steps,
        explained_prediction=explained_prediction,
        reproduced=abs(explained_prediction - forecast.value) <= REPRODUCED_WITHIN,
    )


def version_importance(version: ModelVersion) -> dict[str, Any] | None:
    """The permutation importance the version was trained with (None when none was measured)."""
    return (version.importance or {}).get("permutation")
