"""The sequential drift rules (see `mlops.services.drift`): daily statistics of the T-1 results,
their noise, and the CUSUMs run over them, as a verdict for the last day or day by day."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mlops.models import BacktestResult

DEFAULT_THRESHOLD_PCT = 15.0
# The CUSUMs' allowances at the default 15% threshold; they scale with the tenant's threshold.
ERROR_ALLOWANCE = math.log(1.08)
BIAS_ALLOWANCE = 0.035
CUSUM_MIN_THRESHOLD = 0.08
CUSUM_SIGMAS = 3.0
CUSUM_STEP_CAP = 0.75
REFERENCE_DAYS = 14
# A normal distribution's standard deviation is 1.4826 times its median absolute deviation.
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class Cusum:
    """A sequential rule's state on the last day: its statistic (the larger side when two-sided),
    threshold, the noise it was scaled by, and which way the error moved."""

    statistic: float
    threshold: float
    sigma: float
    days: int
    direction: str  # "up" (more error, or under-forecast) / "down" (over-forecast)
    # Index (among the known values) of the first day of the excursion that crossed the
    # threshold, else of the current excursion; None when the statistic is at zero.
    change_index: int | None = None

    @property
    def drifting(self) -> bool:
        return self.statistic > self.threshold


def scaled_error(*, wape: float | None, bias: float | None) -> float | None:
    """sum|y - f| / sum f from wape (sum|y - f| / sum y, %) and bias (sum(f - y) / sum y, %)."""
    if wape is None or bias is None or 100.0 + bias <= 0:
        return None
    return wape / (100.0 + bias)


def daily_statistics(rows: list[BacktestResult]) -> tuple[np.ndarray, np.ndarray]:
    """Per T-1 day, the log error per unit of forecast volume and the bias as a share of
    demand (NaN where the day lacks the numbers)."""
    log_error = np.full(len(rows), np.nan)
    bias = np.full(len(rows), np.nan)
    for index, row in enumerate(rows):
        value = scaled_error(wape=row.wape, bias=row.bias)
        if value:
            log_error[index] = math.log(value)
        if row.bias is not None:
            bias[index] = row.bias / 100.0
    return log_error, bias


def noise_sigma(values: np.ndarray) -> float:
    """Day-to-day noise of a daily statistic: 1.4826 * MAD of its first differences / sqrt 2
    (robust to outlier days and barely moved by a level step)."""
    steps = np.diff(values[~np.isnan(values)])
    if not steps.size:
        return 0.0
    return float(MAD_TO_SIGMA * np.median(np.abs(steps - np.median(steps))) / math.sqrt(2.0))


def cusum(
    values: list[float] | np.ndarray,
    *,
    allowance: float,
    sigma: float | None = None,
    two_sided: bool = False,
) -> Cusum | None:
    """The CUSUM of daily deviations from the in-control level (oldest first; NaN days are
    skipped) with the module's threshold and step cap; `sigma` defaults to the values' own
    noise. None with fewer than REFERENCE_DAYS days to estimate the noise from."""
    series = np.asarray(values, dtype=np.float64)
    series = series[~np.isnan(series)]
    if sigma is None:
        if series.size < REFERENCE_DAYS:
            return None
        sigma = noise_sigma(series)
    threshold = max(CUSUM_MIN_THRESHOLD, CUSUM_SIGMAS * sigma)
    sides, _ = _walk(series, allowance=allowance, threshold=threshold, two_sided=two_sided)
    direction = "up" if sides["up"].statistic >= sides["down"].statistic else "down"
    side = sides[direction]
    return Cusum(
        statistic=side.statistic,
        threshold=threshold,
        sigma=sigma,
        days=len(series),
        direction=direction,
        change_index=side.change_index,
    )


@dataclass
class _Side:
    """One side of a CUSUM: its statistic, and where its excursion began."""

    statistic: float = 0.0
    start: int | None = None
    crossed_from: int | None = None

    def step(self, index: int, increment: float, threshold: float) -> None:
        self.statistic = max(0.0, self.statistic + increment)
        if self.statistic == 0.0:
            self.start = self.crossed_from = None
            return
        if self.start is None:
            self.start = index
        if self.statistic > threshold and self.crossed_from is None:
            self.crossed_from = self.start

    @property
    def change_index(self) -> int | None:
        return self.crossed_from if self.crossed_from is not None else self.start


def _walk(
    values: np.ndarray, *, allowance: float, threshold: float, two_sided: bool
) -> tuple[dict[str, _Side], dict[str, list[float | None]]]:
    """Both sides of a CUSUM run over the values (NaN days skipped, their step None), with the
    module's step cap; returns the sides on the last day and each side's statistic per day."""
    cap = CUSUM_STEP_CAP * threshold
    sides = {"up": _Side(), "down": _Side()}
    path: dict[str, list[float | None]] = {"up": [], "down": []}
    known = 0
    for value in values:
        if np.isnan(value):
            path["up"].append(None)
            path["down"].append(None)
            continue
        sides["up"].step(known, min(value - allowance, cap), threshold)
        if two_sided:
            sides["down"].step(known, min(-value - allowance, cap), threshold)
        path["up"].append(sides["up"].statistic)
        path["down"].append(sides["down"].statistic)
        known += 1
    return sides, path


@dataclass(frozen=True)
class CusumPath:
    """A CUSUM day by day (None on days without a value): the upward side, the downward one
    (None when one-sided), and the threshold both are held against."""

    up: list[float | None]
    down: list[float | None] | None
    threshold: float


@dataclass(frozen=True)
class RuleInput:
    """What a sequential rule reads: each monitored day's deviation from the in-control level
    (NaN where the day lacks the numbers), its allowance, the noise that scales its threshold,
    and whether both directions count."""

    values: np.ndarray
    allowance: float
    sigma: float
    two_sided: bool

    def run(self) -> Cusum | None:
        return cusum(
            self.values, allowance=self.allowance, sigma=self.sigma, two_sided=self.two_sided
        )

    def path(self) -> CusumPath:
        threshold = max(CUSUM_MIN_THRESHOLD, CUSUM_SIGMAS * self.sigma)
        _, path = _walk(
            self.values, allowance=self.allowance, threshold=threshold, two_sided=self.two_sided
        )
        return CusumPath(
            up=path["up"], down=path["down"] if self.two_sided else None, threshold=threshold
        )


def rule_inputs(
    *, reference: list[BacktestResult], monitored: list[BacktestResult], threshold_pct: float
) -> dict[str, RuleInput]:
    """The inputs of the error and bias CUSUMs ("error_cusum", "bias_cusum") for the monitored
    days against the in-control level of the reference days; none without a full reference or
    a monitored day, or for a statistic the reference never had."""
    if len(reference) < REFERENCE_DAYS or not monitored:
        return {}
    reference_error, reference_bias = daily_statistics(reference)
    error, bias = daily_statistics(monitored)
    # A tenant that tolerates more error before calling it drift tolerates more in both CUSUMs.
    scale = threshold_pct / DEFAULT_THRESHOLD_PCT
    inputs = {}
    if not np.isnan(reference_error).all():
        inputs["error_cusum"] = RuleInput(
            values=error - np.nanmedian(reference_error),
            allowance=math.log(1.0 + math.expm1(ERROR_ALLOWANCE) * scale),
            sigma=noise_sigma(np.concatenate([reference_error, error])),
            two_sided=False,
        )
    if not np.isnan(reference_bias).all():
        # Positive when the champion under-forecasts more than it did in its first week.
        inputs["bias_cusum"] = RuleInput(
            values=np.nanmedian(reference_bias) - bias,
            allowance=BIAS_ALLOWANCE * scale,
            sigma=noise_sigma(np.concatenate([reference_bias, bias])),
            two_sided=True,
        )
    return inputs


def sequential_rules(
    *, reference: list[BacktestResult], monitored: list[BacktestResult], threshold_pct: float
) -> tuple[Cusum | None, Cusum | None]:
    """The error and bias CUSUMs of the monitored days against the in-control level of the
    reference days; (None, None) without a full reference week or a monitored day."""
    inputs = rule_inputs(reference=reference, monitored=monitored, threshold_pct=threshold_pct)
    error, bias = (inputs.get(name) for name in ("error_cusum", "bias_cusum"))
    return (error.run() if error else None, bias.run() if bias else None)
