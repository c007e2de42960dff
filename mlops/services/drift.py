"""Drift detection: is the champion's daily T-1 error still what it was?

Three rules; any one is drift.

- Threshold rule (the specification's): the point-weighted mean MAE of the champion's T-1
  results over the last 7 days is worse than its baseline MAE (its walk-forward MAE when it was
  judged for promotion) by more than the tenant's `drift_threshold_pct` (default 15%). It needs
  4 of those 7 days.
- Error CUSUM: one-sided CUSUM of the daily log-ratio of the error per unit of forecast volume,
  e = sum|actual - forecast| / sum forecast (from each day's wape and bias: wape / (100 + bias)),
  to its in-control level. It is the daily MAE ratio with the reference rescaled to the day's
  forecast volume, so weekday and seasonal volume swings cancel while an unforeseen level does
  not. Allowance k = log(1.08) at the default 15% threshold.
- Bias CUSUM (a tracking signal): two-sided CUSUM of the day's bias (sum(f - y) / sum y) against
  its in-control level, in shares of demand: systematic under-forecast counts up, over-forecast
  down. Allowance k = 0.035 at the default 15% threshold. A level shift in demand shows here
  first: on the synthetic data with 30% of series up 40%, the daily MAE rises only 5-10% (no
  more than its excursions as a champion ages over a quarter) while the bias moves by two to
  three of its daily standard deviations from the first day on.

In-control level: the median of the champion's first 14 out-of-sample T-1 days (after its
training data; one week proved too short: a lucky first week set the bar low). The daily
forecasts differ from the walk-forward that made the baseline (they are one day ahead where the
walk-forward averages seven; both forecast without the target days' promotions, see
`mlops.services.data.PROMOTIONS_KNOWN_AHEAD`), so the CUSUMs compare the champion with its own
first two weeks in service rather than with the backtest. Monitoring starts on the fifteenth day and covers at most the last 90.

Both CUSUMs run S_t = max(0, S_{t-1} + min(x_t - k, 0.75 h)) and fire when S > h, with
h = max(0.08, 3 sigma); sigma is the day-to-day noise of x, estimated robustly from every day
since training (1.4826 * MAD of first differences / sqrt 2, which a level step barely moves),
so a small tenant's noisier days need more evidence than a large tenant's. k lets small steady
offsets (a champion slowly ageing) drain away instead of accumulating. Capping one day's step at
0.75 h means one noisy day is never an alert; two or three days of a lasting shift are. Both
allowances scale with the tenant's drift threshold (k times threshold / 15%).

The parameters were chosen on that synthetic data (1,000 series, a small XGBoost champion):
through the real daily pipeline on six generated data sets, the shift was called 1 to 3 days
after it began (two days on average) and 90 days without a shift raised nothing; replaying
production-like forecasts on ten more data sets (1,000 and 2,000 series) gave 1 to 2 days and
no false alarm. The daily noise grows as 1/sqrt(series): at 600 series one quiet quarter in
three raised a bias alarm, and at 50 series the noise exceeds what this shift does to the
error, so only the 7-day threshold rule (or a larger shift) can call it.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from django.db import transaction

from mlops.models import (
    GLOBAL_SEGMENT,
    BacktestResult,
    ModelRetrainingLog,
    ModelVersion,
    Trigger,
)
from mlops.selectors import baseline_mae, get_champion_model, t_minus_1_results

logger = logging.getLogger(__name__)

Status = ModelVersion.Status

DEFAULT_THRESHOLD_PCT = 15.0
RECENT_DAYS = 7
MIN_RECENT_DAYS = 4
LOOKBACK_DAYS = 90
# The CUSUMs' allowances at the default 15% threshold; they scale with the tenant's threshold.
ERROR_ALLOWANCE = math.log(1.08)
BIAS_ALLOWANCE = 0.035
CUSUM_MIN_THRESHOLD = 0.08
CUSUM_SIGMAS = 3.0
CUSUM_STEP_CAP = 0.75
REFERENCE_DAYS = 14
# A normal distribution's standard deviation is 1.4826 times its median absolute deviation.
MAD_TO_SIGMA = 1.4826
AWAITING_DECISION = (Status.CANDIDATE, Status.SHADOW, Status.CHALLENGER)
PENDING_RETRAIN = (ModelRetrainingLog.Status.QUEUED, ModelRetrainingLog.Status.RUNNING)


@dataclass(frozen=True)
class Baseline:
    """The champion's MAE when it was promoted, and where that number comes from."""

    mae: float | None
    source: str


@dataclass(frozen=True)
class Cusum:
    """A sequential rule's state on the last day: its statistic (the larger side when two-sided),
    threshold, the noise it was scaled by, and which way the error moved."""

    statistic: float
    threshold: float
    sigma: float
    days: int
    direction: str  # "up" (more error, or under-forecast) / "down" (over-forecast)

    @property
    def drifting(self) -> bool:
        return self.statistic > self.threshold


@dataclass
class DriftResult:
    """What one drift check found and did."""

    name: str
    segment: str
    status: str  # drift / ok / no_champion / no_baseline / insufficient_data
    as_of: dt.date | None = None
    champion_id: int | None = None
    champion_version: str | None = None
    baseline_mae: float | None = None
    baseline_source: str | None = None
    recent_mae: float | None = None
    recent_days: int = 0
    drift_pct: float | None = None
    threshold_pct: float = DEFAULT_THRESHOLD_PCT
    threshold_rule: bool = False
    error_cusum: float | None = None
    error_cusum_threshold: float | None = None
    bias_cusum: float | None = None
    bias_cusum_threshold: float | None = None
    bias_direction: str = ""
    recent_bias: float | None = None
    reference_bias: float | None = None
    reference_start: dt.date | None = None
    reference_end: dt.date | None = None
    rules: list[str] = field(default_factory=list)
    alert_id: int | None = None
    retrain_log_id: int | None = None
    retrain_queued: bool = False
    retrain_skipped_reason: str = ""

    @property
    def drifting(self) -> bool:
        return self.status == "drift"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("as_of", "reference_start", "reference_end"):
            data[name] = data[name].isoformat() if data[name] else None
        return data


def scaled_error(*, wape: float | None, bias: float | None) -> float | None:
    """sum|y - f| / sum f from wape (sum|y - f| / sum y, %) and bias (sum(f - y) / sum y, %)."""
    if wape is None or bias is None or 100.0 + bias <= 0:
        return None
    return wape / (100.0 + bias)


def _weighted_mean(pairs: list[tuple[float | None, int]]) -> float | None:
    known = [(value, weight) for value, weight in pairs if value is not None and weight > 0]
    total = sum(weight for _, weight in known)
    return sum(value * weight for value, weight in known) / total if total else None


def champion_baseline(champion: ModelVersion) -> Baseline:
    """The champion's walk-forward MAE when it was judged for promotion (its side of the last
    evaluation, else its training metrics), else the mean of its weekly walk-forward windows
    stored by the time it was promoted."""
    mae = baseline_mae(champion)
    if mae:
        evaluated = (champion.last_evaluation or {}).get("candidate_metrics") or {}
        return Baseline(
            mae=float(mae),
            source="last_evaluation" if evaluated.get("mae") else "training_metrics",
        )
    windows = BacktestResult.objects.filter(
        model_version=champion,
        kind=BacktestResult.Kind.WALK_FORWARD,
        mae__isnull=False,
        n_points__gt=0,
    )
    if champion.promoted_at is not None:
        windows = windows.filter(created_at__lte=champion.promoted_at)
    rows = list(windows.only("mae", "n_points"))
    if not rows:
        return Baseline(mae=None, source="none")
    return Baseline(
        mae=_weighted_mean([(row.mae, row.n_points) for row in rows]), source="walk_forward"
    )


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
    cap = CUSUM_STEP_CAP * threshold
    upper = lower = 0.0
    for value in series:
        upper = max(0.0, upper + min(value - allowance, cap))
        if two_sided:
            lower = max(0.0, lower + min(-value - allowance, cap))
    statistic, direction = (upper, "up") if upper >= lower else (lower, "down")
    return Cusum(
        statistic=statistic, threshold=threshold, sigma=sigma, days=len(series), direction=direction
    )


def sequential_rules(
    *, reference: list[BacktestResult], monitored: list[BacktestResult], threshold_pct: float
) -> tuple[Cusum | None, Cusum | None]:
    """The error and bias CUSUMs of the monitored days against the in-control level of the
    reference days; (None, None) without a full reference week or a monitored day."""
    if len(reference) < REFERENCE_DAYS or not monitored:
        return None, None
    reference_error, reference_bias = daily_statistics(reference)
    error, bias = daily_statistics(monitored)
    # A tenant that tolerates more error before calling it drift tolerates more in both CUSUMs.
    scale = threshold_pct / DEFAULT_THRESHOLD_PCT
    error_cusum = bias_cusum = None
    if not np.isnan(reference_error).all():
        error_cusum = cusum(
            error - np.nanmedian(reference_error),
            allowance=math.log(1.0 + math.expm1(ERROR_ALLOWANCE) * scale),
            sigma=noise_sigma(np.concatenate([reference_error, error])),
        )
    if not np.isnan(reference_bias).all():
        # Positive when the champion under-forecasts more than it did in its first week.
        bias_cusum = cusum(
            np.nanmedian(reference_bias) - bias,
            allowance=BIAS_ALLOWANCE * scale,
            sigma=noise_sigma(np.concatenate([reference_bias, bias])),
            two_sided=True,
        )
    return error_cusum, bias_cusum


def _tenant_threshold_pct() -> float:
    from tenants.selectors import current_tenant

    tenant = current_tenant()
    return float(getattr(tenant, "drift_threshold_pct", DEFAULT_THRESHOLD_PCT))


def _where(name: str, segment: str) -> str:
    return name if segment == GLOBAL_SEGMENT else f"{name} [{segment}]"


def detect_drift(
    *, name: str = "demand_forecast", segment: str = GLOBAL_SEGMENT, as_of: dt.date | None = None
) -> DriftResult:
    """Compare the champion's T-1 error up to `as_of` (default: its latest T-1 day) with its
    baseline under the threshold and sequential rules. On drift, raise one critical
    `drift_detected` alert (one open alert per name/segment/champion; a repeat for the same day
    changes nothing) and queue an emergency retrain (trigger drift_detected), unless one is
    queued or running or its challenger still waits for a person. Returns what it found."""
    result = DriftResult(name=name, segment=segment, status="ok")
    result.threshold_pct = _tenant_threshold_pct()
    champion = get_champion_model(name=name, segment=segment)
    if champion is None:
        result.status = "no_champion"
        return result
    result.champion_id, result.champion_version = champion.pk, champion.version

    rows = t_minus_1_results(
        version=champion, after=champion.training_end, until=as_of, days=LOOKBACK_DAYS
    )
    rows = [row for row in rows if row.n_points > 0]
    if not rows:
        result.as_of = as_of
        result.status = "insufficient_data"
        return result
    result.as_of = as_of = as_of or rows[-1].window_end

    baseline = champion_baseline(champion)
    result.baseline_mae, result.baseline_source = baseline.mae, baseline.source
    if not baseline.mae:
        result.status = "no_baseline"
        return result

    recent = [
        row
        for row in rows
        if row.window_end > as_of - dt.timedelta(days=RECENT_DAYS) and row.mae is not None
    ]
    result.recent_days = len(recent)
    if recent:
        result.recent_mae = _weighted_mean([(row.mae, row.n_points) for row in recent])
        result.drift_pct = (result.recent_mae / baseline.mae - 1.0) * 100.0
        result.recent_bias = _weighted_mean([(row.bias, row.n_points) for row in recent])
    result.threshold_rule = bool(
        result.recent_days >= MIN_RECENT_DAYS and result.drift_pct > result.threshold_pct
    )

    reference = [
        row
        for row in t_minus_1_results(
            version=champion, after=champion.training_end, until=as_of, first=REFERENCE_DAYS
        )
        if row.n_points > 0
    ]
    if reference:
        result.reference_start = reference[0].window_end
        result.reference_end = reference[-1].window_end
        biases = [row.bias for row in reference if row.bias is not None]
        result.reference_bias = float(np.median(biases)) if biases else None
    monitored = [row for row in rows if reference and row.window_end > reference[-1].window_end]
    error, bias = sequential_rules(
        reference=reference, monitored=monitored, threshold_pct=result.threshold_pct
    )
    if error is not None:
        result.error_cusum, result.error_cusum_threshold = error.statistic, error.threshold
    if bias is not None:
        result.bias_cusum, result.bias_cusum_threshold = bias.statistic, bias.threshold
        result.bias_direction = bias.direction

    result.rules = [
        rule
        for rule, fired in (
            ("threshold", result.threshold_rule),
            ("error_cusum", error is not None and error.drifting),
            ("bias_cusum", bias is not None and bias.drifting),
        )
        if fired
    ]
    if not result.rules:
        if result.recent_days < MIN_RECENT_DAYS and error is None and bias is None:
            result.status = "insufficient_data"
        return result
    result.status = "drift"
    _act_on_drift(result=result, champion=champion)
    return result


@transaction.atomic
def _act_on_drift(*, result: DriftResult, champion: ModelVersion) -> None:
    """Raise (or keep) the drift alert and queue the emergency retrain, filling in `result`."""
    from alerts.models import MLAlert
    from alerts.selectors import OPEN_STATUSES
    from alerts.services import raise_alert
    from mlops.services.retraining import queue_retrain

    key = f"drift_detected:{result.name}:{result.segment}:{champion.pk}"
    open_alert = (
        MLAlert.objects.select_for_update().filter(dedup_key=key, status__in=OPEN_STATUSES).first()
    )
    if open_alert is not None and open_alert.metadata.get("as_of") == result.as_of.isoformat():
        # The same day checked again (a re-run job): nothing new to say or to do.
        result.alert_id = open_alert.pk
        result.retrain_log_id = open_alert.metadata.get("retrain_log_id")
        result.retrain_skipped_reason = "already checked for this day"
        return

    waiting = (
        ModelVersion.objects.filter(
            name=result.name,
            segment=result.segment,
            trigger=Trigger.DRIFT_DETECTED,
            status__in=AWAITING_DECISION,
        )
        .order_by("-version_number")
        .first()
    )
    pending = (
        ModelRetrainingLog.objects.filter(
            name=result.name,
            segment=result.segment,
            trigger=Trigger.DRIFT_DETECTED,
            status__in=PENDING_RETRAIN,
        )
        .order_by("-created_at")
        .first()
    )
    numbers = {
        "baseline_mae": _rounded(result.baseline_mae),
        "recent_mae": _rounded(result.recent_mae),
        "drift_pct": _rounded(result.drift_pct, 2),
        "threshold_pct": result.threshold_pct,
        "champion_version": champion.version,
        "champion_id": champion.pk,
        "rules": ", ".join(result.rules),
        "error_cusum": _rounded(result.error_cusum),
        "error_cusum_threshold": _rounded(result.error_cusum_threshold),
        "bias_cusum": _rounded(result.bias_cusum),
        "bias_cusum_threshold": _rounded(result.bias_cusum_threshold),
        "reference_bias_pct": _rounded(result.reference_bias, 2),
        "recent_bias_pct": _rounded(result.recent_bias, 2),
        "as_of": result.as_of.isoformat(),
        "recent_days": result.recent_days,
    }
    if waiting is not None:
        result.retrain_skipped_reason = (
            f"{waiting.version} from an earlier drift retrain still waits for a decision"
        )
    elif pending is not None:
        result.retrain_log_id = pending.pk
        result.retrain_skipped_reason = f"retrain #{pending.pk} is already {pending.status}"
    else:
        log = queue_retrain(
            trigger=Trigger.DRIFT_DETECTED,
            name=result.name,
            segment=result.segment,
            trigger_metadata=numbers,
        )
        result.retrain_log_id = log.pk
        # queue_retrain hands back a retrain of another trigger already pending instead.
        result.retrain_queued = log.trigger == Trigger.DRIFT_DETECTED
        if not result.retrain_queued:
            result.retrain_skipped_reason = (
                f"{log.get_trigger_display().lower()} retrain #{log.pk} is already {log.status}"
            )

    where = _where(result.name, result.segment)
    change = f"{result.drift_pct:+.1f}%" if result.drift_pct is not None else "n/a"
    why = {
        "threshold": (
            f"its MAE over the last {result.recent_days} day(s) is {result.recent_mae:.3f} "
            f"against a baseline of {result.baseline_mae:.3f} ({change}, over the "
            f"{result.threshold_pct:g}% threshold)"
        ),
        "error_cusum": (
            f"its error per unit forecast has stayed above its baseline for long enough "
            f"(error CUSUM {result.error_cusum or 0:.3f} > {result.error_cusum_threshold or 0:.3f})"
        ),
        "bias_cusum": (
            f"it has been {'under' if result.bias_direction == 'up' else 'over'}-forecasting "
            f"day after day: bias {_signed(result.recent_bias)} over the last "
            f"{result.recent_days} day(s) against {_signed(result.reference_bias)} in its first "
            f"week in service "
            f"(tracking signal {result.bias_cusum or 0:.3f} > "
            f"{result.bias_cusum_threshold or 0:.3f})"
        ),
    }
    if result.retrain_queued:
        next_step = (
            f"An emergency retrain (#{result.retrain_log_id}) was queued; its result will wait "
            "as challenger for a person to review and promote."
        )
    else:
        next_step = f"No new retrain was queued: {result.retrain_skipped_reason}."
    if waiting is not None:
        next_step += f" Approving this alert promotes {waiting.version}."
    alert = raise_alert(
        alert_type=MLAlert.AlertType.DRIFT_DETECTED,
        severity=MLAlert.Severity.CRITICAL,
        title=f"Model drift detected — {where} {champion.version}: MAE {change}",
        message=(
            f"Champion {champion.version} of {where} no longer fits the sales as of "
            f"{result.as_of}: "
            + "; ".join(why[rule] for rule in result.rules)
            + f". The MAE of the last {result.recent_days} day(s) is {change} against its "
            f"baseline. {next_step}"
        ),
        metadata={
            **numbers,
            "retrain_log_id": result.retrain_log_id,
            "retrain_queued": result.retrain_queued,
            **(
                {"challenger_version": waiting.version, "new_version": waiting.version}
                if waiting is not None
                else {}
            ),
        },
        dedup_key=key,
        model_version=waiting,
    )
    result.alert_id = alert.pk
    logger.warning(
        "Drift of %s %s as of %s (%s): MAE %s, retrain %s",
        where,
        champion.version,
        result.as_of,
        ", ".join(result.rules),
        change,
        result.retrain_log_id,
    )


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}%"


def detect_drift_for_champions(*, as_of: dt.date | None = None) -> list[DriftResult]:
    """`detect_drift` for every name/segment that has a champion."""
    groups = (
        ModelVersion.objects.filter(status=Status.CHAMPION)
        .values_list("name", "segment")
        .order_by("name", "segment")
    )
    return [detect_drift(name=name, segment=segment, as_of=as_of) for name, segment in groups]
