"""Drift detection: the rules, one deduplicated critical alert, one emergency retrain."""

import datetime as dt

import numpy as np
import pytest

from alerts.models import MLAlert
from mlops.models import BacktestResult, ModelRetrainingLog, ModelVersion, Trigger
from mlops.services import check_backtest_degradation, detect_drift
from mlops.services.cusum import BIAS_ALLOWANCE, ERROR_ALLOWANCE, cusum
from mlops.tasks import daily_drift_detection
from tests.mlops.factories import ModelVersionFactory

Status = ModelVersion.Status
LAST_DAY = dt.date(2025, 6, 30)
BASELINE = {"mae": 10.0, "wape": 40.0, "bias": 0.0}

# -- the sequential rule on its own ---------------------------------------------------------------


def noise(days: int, *, sd: float, seed: int = 0) -> list[float]:
    return list(np.random.default_rng(seed).normal(0.0, sd, size=days))


@pytest.mark.nodb
def test_one_very_bad_day_never_fires_the_cusum():
    values = noise(30, sd=0.02) + [0.8] + noise(3, sd=0.02, seed=1)

    for days in range(31, len(values) + 1):
        assert not cusum(values[:days], allowance=ERROR_ALLOWANCE).drifting


@pytest.mark.nodb
def test_a_lasting_rise_fires_the_cusum_within_three_days():
    before = noise(30, sd=0.02)
    values = before + [0.12 + v for v in noise(5, sd=0.02, seed=2)]

    fired = [cusum(values[:days], allowance=ERROR_ALLOWANCE).drifting for days in range(14, 36)]

    first = fired.index(True) + 14
    assert 31 <= first <= 33  # on the shift's first, second or third day, not before


@pytest.mark.nodb
def test_a_small_steady_offset_drains_away_instead_of_accumulating():
    values = [0.03 + v for v in noise(90, sd=0.02, seed=3)]

    assert not cusum(values, allowance=ERROR_ALLOWANCE).drifting


@pytest.mark.nodb
def test_noisier_days_need_more_evidence():
    quiet = noise(40, sd=0.01, seed=4)
    noisy = noise(40, sd=0.06, seed=4)

    assert (
        cusum(noisy, allowance=BIAS_ALLOWANCE).threshold
        > cusum(quiet, allowance=BIAS_ALLOWANCE).threshold
    )


@pytest.mark.nodb
def test_the_bias_tracking_signal_sees_both_directions():
    before = noise(20, sd=0.01, seed=5)
    under = cusum(before + [0.15] * 3, allowance=BIAS_ALLOWANCE, two_sided=True)
    over = cusum(before + [-0.15] * 3, allowance=BIAS_ALLOWANCE, two_sided=True)

    assert under.drifting and under.direction == "up"
    assert over.drifting and over.direction == "down"


@pytest.mark.nodb
def test_too_few_days_give_no_sequential_verdict():
    assert cusum([0.5] * 13, allowance=ERROR_ALLOWANCE) is None


# -- the service -----------------------------------------------------------------------------------


def make_champion(**fields) -> ModelVersion:
    return ModelVersionFactory(
        status=Status.CHAMPION,
        algorithm="xgboost",
        training_start=dt.date(2025, 1, 1),
        training_end=dt.date(2025, 5, 31),
        last_evaluation={"candidate_metrics": dict(BASELINE)},
        **fields,
    )


def add_days(version, *, mae: float, days: int = 7, end: dt.date = LAST_DAY, bias: float = 0.0):
    """T-1 results whose error per unit of forecast is the MAE's ratio to the baseline."""
    for offset in range(days):
        day = end - dt.timedelta(days=offset)
        BacktestResult.objects.update_or_create(
            model_version=version,
            kind="t_minus_1",
            window_start=day,
            window_end=day,
            defaults={
                "mae": mae,
                "wape": BASELINE["wape"] * mae / BASELINE["mae"] * (1 + bias / 100),
                "bias": bias,
                "n_points": 100,
            },
        )


def drift_alerts():
    return MLAlert.objects.filter(alert_type="drift_detected")


def drift_retrains():
    return ModelRetrainingLog.objects.filter(trigger=Trigger.DRIFT_DETECTED)


def test_drift_over_threshold_raises_one_critical_alert_and_queues_an_emergency_retrain(
    django_capture_on_commit_callbacks,
):
    champion = make_champion()
    add_days(champion, mae=10.0, days=30)
    add_days(champion, mae=12.0, days=7)  # 20% worse than the baseline, over 15%

    with django_capture_on_commit_callbacks() as callbacks:
        result = detect_drift()

    assert result.status == "drift" and "threshold" in result.rules
    assert result.recent_mae == pytest.approx(12.0)
    assert result.drift_pct == pytest.approx(20.0)
    (alert,) = drift_alerts()
    assert alert.severity == "critical" and alert.status == "unread"
    assert alert.metadata["baseline_mae"] == 10.0
    assert alert.metadata["recent_mae"] == 12.0
    assert alert.metadata["drift_pct"] == 20.0
    assert alert.metadata["champion_version"] == champion.version
    assert "MAE 20.0% worse than its baseline" in alert.title
    (log,) = drift_retrains()
    assert (log.name, log.segment, log.status) == ("demand_forecast", "global", "queued")
    assert log.trigger_metadata["drift_pct"] == 20.0
    assert alert.metadata["retrain_log_id"] == log.pk == result.retrain_log_id
    assert callbacks  # the retrain (and the alert's delivery) go out once committed


def test_error_a_little_above_the_baseline_every_day_raises_nothing():
    champion = make_champion()
    add_days(champion, mae=10.4, days=30)  # 4% worse every day since training: an ageing model

    result = detect_drift()

    assert result.status == "ok" and result.rules == []
    assert result.drift_pct == pytest.approx(4.0)
    assert not drift_alerts().exists() and not drift_retrains().exists()


def test_a_steady_gap_between_daily_forecasts_and_the_backtest_is_no_drift():
    # Daily forecasts may under-forecast a little every day compared with the walk-forward that
    # made the baseline (a different horizon, a season the backtest did not cover). That is the
    # champion's normal.
    champion = make_champion()
    add_days(champion, mae=10.2, days=60, bias=-7.0)

    result = detect_drift()

    assert result.status == "ok"
    assert result.reference_bias == pytest.approx(-7.0)
    assert result.bias_cusum == 0.0 and result.error_cusum == 0.0


def test_a_lasting_rise_below_the_threshold_is_caught_by_the_error_cusum():
    champion = make_champion()
    add_days(champion, mae=10.0, days=30, end=LAST_DAY - dt.timedelta(days=3))
    add_days(champion, mae=11.5, days=3)  # three days 15% worse; the 7-day mean is +6.4%

    result = detect_drift()

    assert result.rules == ["error_cusum"]
    assert result.drift_pct == pytest.approx(100 * (4 * 10 + 3 * 11.5) / 70 - 100)


def test_the_tenants_threshold_decides(tenant, monkeypatch):
    monkeypatch.setattr(tenant, "drift_threshold_pct", 25.0)
    champion = make_champion()
    add_days(champion, mae=10.0, days=30)
    add_days(champion, mae=12.0, days=7)

    result = detect_drift()

    assert result.threshold_pct == 25.0
    assert "threshold" not in result.rules


def test_a_lasting_under_forecast_fires_the_tracking_signal_before_the_threshold():
    champion = make_champion()
    add_days(champion, mae=10.0, days=30, end=LAST_DAY - dt.timedelta(days=3))
    add_days(champion, mae=10.3, days=3, bias=-15.0)  # demand jumped: 15% under-forecast

    result = detect_drift()

    assert result.status == "drift" and result.rules == ["bias_cusum"]
    assert result.bias_direction == "up"
    (alert,) = drift_alerts()
    assert "under-forecasting" in alert.message


def test_checking_the_same_day_again_changes_nothing():
    champion = make_champion()
    add_days(champion, mae=12.0, days=7)

    first = detect_drift()
    again = detect_drift()

    (alert,) = drift_alerts()
    assert alert.occurrences == 1
    assert drift_retrains().count() == 1
    assert again.alert_id == first.alert_id and not again.retrain_queued


def test_drift_the_next_day_counts_on_the_open_alert_without_a_second_retrain():
    champion = make_champion()
    add_days(champion, mae=12.0, days=7, end=LAST_DAY - dt.timedelta(days=1))
    detect_drift()
    add_days(champion, mae=12.5, days=1)

    result = detect_drift()

    (alert,) = drift_alerts()
    assert alert.occurrences == 2
    assert alert.metadata["as_of"] == LAST_DAY.isoformat()
    assert drift_retrains().count() == 1
    assert "already queued" in result.retrain_skipped_reason


def test_no_new_retrain_while_the_drift_challenger_waits_and_approving_promotes_it():
    champion = make_champion()
    add_days(champion, mae=12.0, days=7)
    waiting = ModelVersionFactory(status=Status.CHALLENGER, trigger=Trigger.DRIFT_DETECTED)

    result = detect_drift()

    assert result.status == "drift" and not result.retrain_queued
    assert waiting.version in result.retrain_skipped_reason
    assert not drift_retrains().exists()
    (alert,) = drift_alerts()
    assert alert.model_version == waiting
    assert alert.metadata["challenger_version"] == waiting.version


def test_each_champion_has_its_own_drift_alert():
    global_champion = make_champion()
    electronics = make_champion(segment="department:Electronics")
    add_days(global_champion, mae=12.0, days=7)
    add_days(electronics, mae=12.0, days=7)

    detect_drift()
    detect_drift(segment="department:Electronics")

    assert drift_alerts().count() == 2
    assert drift_retrains().count() == 2


def test_without_a_champion_or_results_there_is_nothing_to_say():
    assert detect_drift().status == "no_champion"
    make_champion()
    assert detect_drift().status == "insufficient_data"


def test_days_the_champion_was_trained_on_do_not_count():
    champion = make_champion()
    add_days(champion, mae=20.0, days=7, end=champion.training_end)

    assert detect_drift().status == "insufficient_data"


def test_daily_drift_detection_checks_every_champion():
    drifting = make_champion()
    steady = make_champion(segment="department:Grocery")
    add_days(drifting, mae=12.0, days=7)
    add_days(steady, mae=10.0, days=7)

    results = daily_drift_detection()

    by_segment = {row["segment"]: row for row in results}
    assert by_segment["global"]["status"] == "drift"
    assert by_segment["department:Grocery"]["status"] == "ok"
    assert drift_alerts().count() == 1


# -- week-on-week degradation of the walk-forward ---------------------------------------------------


def add_weeks(version, maes):
    start = dt.date(2025, 5, 5)
    for index, mae in enumerate(maes):
        BacktestResult.objects.create(
            model_version=version,
            kind="walk_forward",
            window_start=start + dt.timedelta(days=7 * index),
            window_end=start + dt.timedelta(days=7 * index + 6),
            mae=mae,
            n_points=700,
        )


def test_a_week_more_than_10_percent_worse_than_the_last_raises_a_warning():
    version = make_champion()
    add_weeks(version, [3.0, 3.1, 3.1 * 1.12])

    alert = check_backtest_degradation(version=version)

    assert alert.alert_type == "backtest_degradation" and alert.severity == "warning"
    assert alert.metadata["change_pct"] == pytest.approx(12.0)
    assert alert.model_version == version


def test_a_week_within_10_percent_raises_nothing():
    version = make_champion()
    add_weeks(version, [3.0, 3.5, 3.5 * 1.08])

    assert check_backtest_degradation(version=version) is None
    assert not MLAlert.objects.exists()
