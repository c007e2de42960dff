"""80% prediction intervals calibrated conformally from out-of-sample forecast residuals.

Residuals are scaled by (1 + forecast) before taking quantiles: retail counts are roughly
negative-binomial, whose spread grows with the level, so one set of scaled quantiles gives a
slow mover a narrow interval and a best seller a wide one while keeping the overall coverage.
Quantiles are kept per horizon step, because errors grow with the distance from the cutoff,
and per group of forecasts where a group has enough residuals of its own (`interval_groups`: a
department and the forecast's volume band, else the department, else all): one pooled set
over-covers a calm department and under-covers a jumpy one, and counts below one a day, mostly
0 or 1, are covered by any interval reaching 1, which a pooled set pays for by covering the
mid-volume series too little.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

NOMINAL_COVERAGE = 0.8
# Residuals a group needs for quantiles of its own, per horizon step.
MIN_GROUP_RESIDUALS = 100
# Volume bands (mean forecast units per day) whose forecasts get quantiles of their own.
VOLUME_BAND_EDGES = (1.0, 5.0)


def interval_groups(departments: np.ndarray, forecast: np.ndarray) -> list[np.ndarray]:
    """The groups of [n_rows, horizon] forecasts, most specific first: department and volume
    band (from each row's mean forecast), then department."""
    departments = np.asarray(departments, dtype=object).astype(str)
    with np.errstate(invalid="ignore"):
        level = np.nan_to_num(np.nanmean(np.asarray(forecast, dtype=np.float64), axis=1))
    band = np.searchsorted(np.asarray(VOLUME_BAND_EDGES), level, side="right")
    return [
        np.char.add(np.char.add(departments, "|"), band.astype(str)).astype(object),
        departments.astype(object),
    ]


def residual_scale(forecast: np.ndarray) -> np.ndarray:
    """Spread unit of a forecast: 1 + max(forecast, 0)."""
    return 1.0 + np.maximum(np.nan_to_num(forecast, nan=0.0), 0.0)


@dataclass(frozen=True)
class ConformalCalibration:
    """Per-horizon-step quantiles of scaled residuals (actual - forecast) / (1 + forecast),
    pooled, and per group (`groups`: name -> (lower, upper) quantiles per step) for the groups
    with at least MIN_GROUP_RESIDUALS residuals at every step."""

    lower_quantiles: tuple[float, ...]
    upper_quantiles: tuple[float, ...]
    nominal_coverage: float
    n_residuals: int
    groups: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = field(default_factory=dict)

    @classmethod
    def from_residuals(
        cls,
        *,
        actual: np.ndarray,
        forecast: np.ndarray,
        nominal_coverage: float = NOMINAL_COVERAGE,
        groups: list[np.ndarray] | None = None,
    ) -> ConformalCalibration | None:
        """Calibrate from out-of-sample [n_forecasts, horizon] actuals and forecasts (and the
        groups of each forecast row, `interval_groups`); None when no step has a known
        actual."""
        actual = np.asarray(actual, dtype=np.float64)
        forecast = np.asarray(forecast, dtype=np.float64)
        pooled = cls._pooled(actual=actual, forecast=forecast, nominal_coverage=nominal_coverage)
        if pooled is None or groups is None:
            return pooled
        keys = np.concatenate([np.asarray(level, dtype=object) for level in groups])
        level_rows = np.tile(np.arange(len(actual)), len(groups))
        own = {}
        for name in np.unique(keys):
            rows = level_rows[keys == name]
            per_step = (~np.isnan(actual[rows]) & ~np.isnan(forecast[rows])).sum(axis=0)
            if not per_step.size or per_step.min() < MIN_GROUP_RESIDUALS:
                continue
            group = cls._pooled(
                actual=actual[rows], forecast=forecast[rows], nominal_coverage=nominal_coverage
            )
            own[str(name)] = (group.lower_quantiles, group.upper_quantiles)
        return replace(pooled, groups=own)

    @classmethod
    def _pooled(
        cls, *, actual: np.ndarray, forecast: np.ndarray, nominal_coverage: float
    ) -> ConformalCalibration | None:
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

    def interval(
        self, forecast: np.ndarray, *, groups: list[np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds for [n_series, horizon] forecasts, each row with the
        quantiles of its most specific group that has its own (`groups`, as
        `interval_groups` gives them; else the pooled ones; steps past the calibrated horizon
        reuse the last step's); the bounds hold the forecast, and the lower one is never below
        0."""
        forecast = np.asarray(forecast, dtype=np.float64)
        steps = np.minimum(np.arange(forecast.shape[1]), len(self.lower_quantiles) - 1)
        low = np.tile(np.asarray(self.lower_quantiles)[steps], (forecast.shape[0], 1))
        high = np.tile(np.asarray(self.upper_quantiles)[steps], (forecast.shape[0], 1))
        # The most specific group with quantiles of its own wins: lay the general levels first.
        for level in reversed(groups or []):
            level = np.asarray(level, dtype=object)
            for name, (group_low, group_high) in self.groups.items():
                rows = level == name
                if not rows.any():
                    continue
                group_steps = np.minimum(np.arange(forecast.shape[1]), len(group_low) - 1)
                low[rows] = np.asarray(group_low)[group_steps]
                high[rows] = np.asarray(group_high)[group_steps]
        scale = residual_scale(forecast)
        # A group whose residuals lean one way can put both quantiles on one side of zero; the
        # interval still holds the point forecast, which a planner reads as its middle.
        lower = np.minimum(forecast + low * scale, forecast)
        upper = np.maximum(forecast + high * scale, forecast)
        return np.maximum(lower, 0.0).astype(np.float32), upper.astype(np.float32)

    def to_dict(self) -> dict:
        return {
            "lower_quantiles": list(self.lower_quantiles),
            "upper_quantiles": list(self.upper_quantiles),
            "nominal_coverage": self.nominal_coverage,
            "n_residuals": self.n_residuals,
            "groups": {
                name: {"lower_quantiles": list(low), "upper_quantiles": list(high)}
                for name, (low, high) in self.groups.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict) -> ConformalCalibration:
        return cls(
            lower_quantiles=tuple(float(value) for value in data["lower_quantiles"]),
            upper_quantiles=tuple(float(value) for value in data["upper_quantiles"]),
            nominal_coverage=float(data["nominal_coverage"]),
            n_residuals=int(data["n_residuals"]),
            groups={
                str(name): (
                    tuple(float(value) for value in group["lower_quantiles"]),
                    tuple(float(value) for value in group["upper_quantiles"]),
                )
                for name, group in data.get("groups", {}).items()
            },
        )


def _conformal_levels(*, n: int, tail: float) -> tuple[float, float]:
    """Split-conformal quantile levels with the finite-sample (n + 1) correction."""
    high = min(math.ceil((n + 1) * (1.0 - tail)) / n, 1.0)
    low = max(math.floor((n + 1) * tail) / n - 1.0 / n, 0.0)
    return low, high
