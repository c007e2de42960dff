"""A small global LSTM over all series that forecasts a week at once from the last four weeks."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from forecasting.families.base import ForecastModel, RefitSession, recent_history_with_future
from forecasting.families.hyperparameters import Spec
from forecasting.families.inputs import FeatureInputs
from forecasting.features import CategoryEncodings
from forecasting.panel import Panel

STATE_FILE = "state_dict.pt"
# Per time step: scaled quantity, whether it is known, promotion flag, weekday (sin, cos).
STEP_INPUTS = 5


class SalesLSTM(nn.Module):
    """Encodes the recent weeks with an LSTM, then maps the last state, the department and the
    planned promotions of the target days to `horizon` scaled forecasts (direct multi-step)."""

    def __init__(self, *, hidden_size: int, horizon: int, n_departments: int) -> None:
        super().__init__()
        self.encoder = nn.LSTM(input_size=STEP_INPUTS, hidden_size=hidden_size, batch_first=True)
        # One extra code for departments unseen in training.
        self.department_embedding = nn.Embedding(n_departments + 1, 4)
        self.head = nn.Sequential(
            nn.Linear(hidden_size + 4 + horizon, 2 * hidden_size),
            nn.ReLU(),
            nn.Linear(2 * hidden_size, horizon),
        )

    def forward(
        self, steps: torch.Tensor, department: torch.Tensor, future_promotion: torch.Tensor
    ) -> torch.Tensor:
        _, (hidden, _) = self.encoder(steps)
        joined = torch.cat(
            [hidden[-1], self.department_embedding(department), future_promotion], dim=1
        )
        return self.head(joined)


class LSTMModel(ForecastModel):
    """Global LSTM; inputs are scaled by each window's mean so one network fits all volumes."""

    algorithm: ClassVar[str] = "lstm"
    known_inputs: ClassVar[tuple[str, ...]] = ("promotion_calendar",)
    default_hyperparameters: ClassVar[dict[str, Any]] = {
        "lookback_days": 28,
        "horizon": 7,
        "hidden_size": 32,
        "epochs": 6,
        "windows_per_epoch": 20_000,
        "batch_size": 256,
        "learning_rate": 0.003,
        "seed": 0,
    }
    hyperparameter_specs: ClassVar[dict[str, Spec]] = {
        "lookback_days": Spec(int, minimum=7, maximum=365),
        "horizon": Spec(int, minimum=1, maximum=28),
        "hidden_size": Spec(int, minimum=1, maximum=1024),
        "epochs": Spec(int, minimum=1, maximum=200),
        "windows_per_epoch": Spec(int, minimum=1, maximum=1_000_000),
        "batch_size": Spec(int, minimum=1, maximum=8192),
        "learning_rate": Spec(float, minimum=0, maximum=1, above=True),
        "seed": Spec(int, minimum=0, maximum=2**31 - 1),
    }

    def __init__(self, **hyperparameters: Any) -> None:
        super().__init__(**hyperparameters)
        self.network: SalesLSTM | None = None
        self.encodings: CategoryEncodings | None = None
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    @property
    def features(self) -> list[str]:
        lookback = self._hyperparameters["lookback_days"]
        return [
            f"quantity_last_{lookback}_days_scaled",
            "quantity_known",
            "on_promotion",
            "day_of_week_sin",
            "day_of_week_cos",
            "department",
            "planned_promotions",
        ]

    def _new_network(self) -> SalesLSTM:
        return SalesLSTM(
            hidden_size=int(self._hyperparameters["hidden_size"]),
            horizon=int(self._hyperparameters["horizon"]),
            n_departments=len(self.encodings.departments),
        )

    def _fit_point(self, panel: Panel, session: RefitSession | None = None) -> None:
        settings = self._hyperparameters
        lookback, horizon = int(settings["lookback_days"]), int(settings["horizon"])
        seed = int(settings["seed"])
        torch.manual_seed(seed)
        random = np.random.default_rng(seed)
        self.encodings = CategoryEncodings.fit(panel=panel)
        network = self._new_network().to(self.device)
        optimizer = torch.optim.Adam(network.parameters(), lr=float(settings["learning_rate"]))

        n_origins = panel.n_days - lookback - horizon + 1
        if n_origins <= 0:
            raise ValueError(f"lstm needs at least {lookback + horizon} days to train on")
        departments = self._department_codes(panel)
        weekday = panel.dates.day_of_week.to_numpy()
        batch_size = int(settings["batch_size"])
        for _ in range(int(settings["epochs"])):
            n_windows = int(settings["windows_per_epoch"])
            series = random.integers(0, panel.n_series, n_windows)
            # Each window starts at `origin`: inputs are [origin - lookback, origin).
            origins = random.integers(lookback, lookback + n_origins, n_windows)
            for first in range(0, n_windows, batch_size):
                rows = slice(first, first + batch_size)
                batch = _windows(
                    quantity=panel.quantity,
                    on_promotion=panel.on_promotion,
                    weekday=weekday,
                    series=series[rows],
                    origins=origins[rows],
                    lookback=lookback,
                    horizon=horizon,
                )
                target = panel.quantity[
                    series[rows, None], origins[rows, None] + np.arange(horizon)
                ]
                loss = _scaled_absolute_error(
                    prediction=network(
                        torch.from_numpy(batch.steps).to(self.device),
                        torch.from_numpy(departments[series[rows]]).to(self.device),
                        torch.from_numpy(batch.future_promotion).to(self.device),
                    ),
                    target=torch.from_numpy(target / batch.scale[:, None]).to(self.device),
                    scale=torch.from_numpy(batch.scale).to(self.device),
                )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        self.network = network.eval()

    def _predict_point(
        self, *, history: Panel, future_promotion: np.ndarray, dates: pd.DatetimeIndex
    ) -> np.ndarray:
        if len(dates) > int(self._hyperparameters["horizon"]):
            raise ValueError(f"this lstm forecasts at most {self._hyperparameters['horizon']} days")
        inputs = self.first_step_inputs(
            history=history, future_promotion=future_promotion, dates=dates
        )
        return self._network_forecast(inputs)[:, : len(dates)]

    def first_step_inputs(
        self, *, history: Panel, future_promotion: np.ndarray, dates: pd.DatetimeIndex
    ) -> FeatureInputs:
        """The network's inputs: the scaled recent days split into their five step inputs,
        the department, and the planned promotions of the trained horizon's days."""
        settings = self._hyperparameters
        lookback, trained_horizon = int(settings["lookback_days"]), int(settings["horizon"])
        planned = np.zeros((history.n_series, trained_horizon), dtype=np.float32)
        shown = min(trained_horizon, future_promotion.shape[1])
        planned[:, :shown] = future_promotion[:, :shown]
        quantity, promotion, all_dates = recent_history_with_future(
            history=history,
            future_promotion=planned,
            dates=pd.date_range(dates[0], periods=trained_horizon, freq="D"),
            lookback_days=lookback,
        )
        batch = _windows(
            quantity=quantity,
            on_promotion=promotion,
            weekday=all_dates.day_of_week.to_numpy(),
            series=np.arange(history.n_series),
            origins=np.full(history.n_series, lookback),
            lookback=lookback,
            horizon=trained_horizon,
        )
        step_features = self.features[:STEP_INPUTS]
        columns = {name: batch.steps[:, :, index] for index, name in enumerate(step_features)}
        columns["department"] = self._department_codes(history)
        columns["planned_promotions"] = batch.future_promotion
        return FeatureInputs(columns=columns, context={"scale": batch.scale})

    def predict_first_step(self, inputs: FeatureInputs) -> np.ndarray:
        return self._network_forecast(inputs)[:, 0]

    def _network_forecast(self, inputs: FeatureInputs) -> np.ndarray:
        """Forecasts of the trained horizon's days, in units, [rows, horizon]."""
        step_features = self.features[:STEP_INPUTS]
        steps = np.stack([inputs.columns[name] for name in step_features], axis=2)
        with torch.no_grad():
            scaled = self.network(
                torch.from_numpy(np.ascontiguousarray(steps, dtype=np.float32)).to(self.device),
                torch.from_numpy(inputs.columns["department"].astype(np.int64)).to(self.device),
                torch.from_numpy(
                    np.ascontiguousarray(inputs.columns["planned_promotions"], dtype=np.float32)
                ).to(self.device),
            )
        return scaled.cpu().numpy() * inputs.context["scale"][:, None]

    def _department_codes(self, panel: Panel) -> np.ndarray:
        codes = self.encodings.department_codes(panel.departments)
        unseen = len(self.encodings.departments)
        return np.where(np.isnan(codes), unseen, codes).astype(np.int64)

    def _state_metadata(self) -> dict[str, Any]:
        return {"encodings": self.encodings.to_dict()}

    def _state_blobs(self) -> dict[str, bytes]:
        buffer = io.BytesIO()
        cpu_state = {name: tensor.cpu() for name, tensor in self.network.state_dict().items()}
        torch.save(cpu_state, buffer)
        return {STATE_FILE: buffer.getvalue()}

    def _load_state(self, *, metadata: dict[str, Any], blobs: dict[str, bytes]) -> None:
        self.encodings = CategoryEncodings.from_dict(metadata["encodings"])
        network = self._new_network()
        # weights_only refuses anything but tensors and plain containers (no pickled code).
        state = torch.load(io.BytesIO(blobs[STATE_FILE]), weights_only=True, map_location="cpu")
        network.load_state_dict(state)
        self.network = network.to(self.device).eval()


@dataclass(frozen=True)
class _Windows:
    """Network inputs for a batch of (series, origin) windows."""

    steps: np.ndarray  # [batch, lookback, STEP_INPUTS]
    future_promotion: np.ndarray  # [batch, horizon]
    scale: np.ndarray  # [batch]


def _windows(
    *,
    quantity: np.ndarray,
    on_promotion: np.ndarray,
    weekday: np.ndarray,
    series: np.ndarray,
    origins: np.ndarray,
    lookback: int,
    horizon: int,
) -> _Windows:
    past_days = origins[:, None] + np.arange(-lookback, 0)
    future_days = origins[:, None] + np.arange(horizon)
    past = quantity[series[:, None], past_days]
    known = ~np.isnan(past)
    # Scale = 1 + mean of the known inputs: zero-sales windows keep a unit scale.
    known_count = np.maximum(known.sum(axis=1), 1)
    scale = (1.0 + np.where(known, past, 0).sum(axis=1) / known_count).astype(np.float32)
    angle = 2 * np.pi * weekday[past_days] / 7
    steps = np.stack(
        [
            np.where(known, past, 0) / scale[:, None],
            known,
            on_promotion[series[:, None], past_days],
            np.sin(angle),
            np.cos(angle),
        ],
        axis=2,
    ).astype(np.float32)
    future_promotion = on_promotion[series[:, None], future_days].astype(np.float32)
    return _Windows(steps=steps, future_promotion=future_promotion, scale=scale)


def _scaled_absolute_error(
    *, prediction: torch.Tensor, target: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """Absolute error in units (scaled error x scale) over known targets: the same weighting as
    WAPE, the metric forecasts are judged by."""
    known = ~torch.isnan(target)
    error = (prediction - torch.nan_to_num(target)).abs() * scale[:, None]
    return (error * known).sum() / known.sum().clamp(min=1)
