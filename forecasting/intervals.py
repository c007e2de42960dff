"""80% prediction intervals calibrated conformally from out-of-sample forecast residuals.

Residuals are scaled by (1 + forecast) before taking quantiles: retail counts are roughly
negative-binomial, whose spread grows with the level, so one set of scaled quantiles gives a
slow mover a narrow interval and a best seller a wide one while keeping the overall coverage.
Quantiles are kept per horizon step, because errors grow with the distance from the cutoff.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

NOMINAL_COVERAGE = 0.8


def residual_scale(forecast: np.ndarray) -> np.ndarray:
    """Spread unit of a forecast: 1 + max(forecast, 0)."""
    return 1.0 + np.maximum(np.nan_to_num(forecast, nan=0.0), 0.0)


@dataclass(frozen=True)
class ConformalCalibration:
    """Per-horizon-step quantiles of scaled residuals (actual - forecast) / (1 + forecast)."""

    lower_quantiles: tuple[float, ...]
    upper_quantiles: tuple[float, ...]
    nominal_coverage: float
    n_residuals: int

    @classmethod
    def from_residuals(
        cls,
        *,
        actual: np.ndarray,
        forecast: np.ndarray,
        nominal_coverage: float = NOMINAL_COVERAGE,
    ) -> ConformalCalibration | None:
        """Calibrate from out-of-sample [n_forecasts, horizon] actuals and forecasts; None when
        no step has a known actual."""
        actual = np.asarray(actual, dtype=np.float64)
        forecast = np.asarray(forecast, dtype=np.float64)
        scores = (actual - forecast) / residual_scale(forecast)
        tail = (1.0 - nominal_coverage) / 2.0
        lower, upper = [], []
        for step in range(scores.shape[1]):
            step_scores = scores[:, step][~np.isnan(scores[:, step])]
            if not step_scores.size:
                if not lower:
                    continue
                lower.append(lower[-1])
                upper.append(upper[-1])
                continue
            low_level, high_level = _conformal_levels(n=step_scores.size, tail=tail)
            lower.append(float(np.quantile(step_scores, low_level, method="lower")))
            upper.append(float(np.quantile(step_scores, high_level, method="higher")))
        if not lower:
            return None
        return cls(
            lower_quantiles=tuple(lower),
            upper_quantiles=tuple(upper),
            nominal_coverage=nominal_coverage,
            n_residuals=int((~np.isnan(scores)).sum()),
        )

    def interval(self, forecast: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds for [n_series, horizon] forecasts (steps past the calibrated
        horizon reuse the last step's quantiles); the lower bound is never below 0."""
        forecast = np.asarray(forecast, dtype=np.float64)
        steps = np.minimum(np.arange(forecast.shape[1]), len(self.lower_quantiles) - 1)
        scale = residual_scale(forecast)
        lower = forecast + np.asarray(self.lower_quantiles)[steps] * scale
        upper = forecast + np.asarray(self.upper_quantiles)[steps] * scale
        return np.maximum(lower, 0.0).astype(np.float32), upper.astype(np.float32)

    def to_dict(self) -> dict:
        return {
            "lower_quantiles": list(self.lower_quantiles),
            "upper_quantiles": list(self.upper_quantiles),
            "nominal_coverage": self.nominal_coverage,
            "n_residuals": self.n_residuals,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ConformalCalibration:
        return cls(
            lower_quantiles=tuple(float(value) for value in data["lower_quantiles"]),
            upper_quantiles=tuple(float(value) for value in data["upper_quantiles"]),
            nominal_coverage=float(data["nominal_coverage"]),
            n_residuals=int(data["n_residuals"]),
        )


def _conformal_levels(*, n: int, tail: float) -> tuple[float, float]:
    """Split-conformal quantile levels with the finite-sample (n + 1) correction."""
    high = min(math.ceil((n + 1) * (1.0 - tail)) / n, 1.0)
    low = max(math.floor((n + 1) * tail) / n - 1.0 / n, 0.0)
    return low, high
