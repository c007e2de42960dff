"""Scenario 2 end to end on generated sales, day by day: forecast, T-1 backtest, drift check.

1,000 series (20 stores x 50 products): the generator's day-to-day noise is large (negative
binomial, shape 4), and a shift of 30% of the series by +40% moves the champion's daily error
and bias by two to three daily standard deviations only at about this size. At 50 series the
noise of any daily error statistic exceeds the shift, and no rule can tell it from noise within
three days (measured while choosing the rules' parameters; see mlops/services/drift.py).
"""

import datetime as dt

import pandas as pd
import pytest

from alerts.models import MLAlert
from alerts.services import act_on_alert
from forecasting.services import import_sales
from forecasting.synthetic import generate_sales
from mlops.models import DriftIncident, ModelRetrainingLog, ModelTransition, ModelVersion, Trigger
from mlops.selectors import get_champion_model
from mlops.services import (
    backtest_yesterday,
    detect_drift,
    forecast_next_days,
    retrain_forecast_model,
)

pytestmark = pytest.mark.slow

STORES, PRODUCTS, SEED = 20, 50, 1
END = dt.date(2025, 6, 30)
DAYS = 241
DRIFT_DATE = END - dt.timedelta(days=20)  # the last three weeks drift
# A small XGBoost champion trained on 120 days: enough to forecast well, quick to refit.
RECIPE = {"n_estimators": 40, "max_depth": 5, "learning_rate": 0.15, "calibration_windows": 1}
Status = ModelVersion.Status


def sales_by_day(frame: pd.DataFrame) -> dict[dt.date, pd.DataFrame]:
    columns = ["date", "store", "product", "department", "quantity", "on_promotion", "price"]
    frame = frame[columns].assign(date=frame["date"].dt.date)
    return {day: rows for day, rows in frame.groupby("date")}


SHIFTED: set[tuple[str, str]] = set()


@pytest.fixture(scope="module")
def drifting_sales():
    frame = generate_sales(
        stores=STORES,
        products=PRODUCTS,
        days=DAYS,
        seed=SEED,
        end_date=END,
        drift_date=DRIFT_DATE,
        drift_fraction=0.3,
        drift_size=0.4,
    )
    SHIFTED.update(frame.attrs["drifted_series"])
    return sales_by_day(frame)


@pytest.fixture(scope="module")
def steady_sales():
    frame = generate_sales(stores=STORES, products=PRODUCTS, days=DAYS, seed=SEED, end_date=END)
    return sales_by_day(frame)


def load_until(days: dict[dt.date, pd.DataFrame], last: dt.date) -> None:
    import_sales(source=pd.concat([rows for day, rows in days.items() if day <= last]))


def train_champion() -> ModelVersion:
    """The first model: trained on the last 120 days and promoted, its walk-forward errors over
    the four weeks before kept as the baseline."""
    log = retrain_forecast_model(
        trigger=Trigger.MANUAL, algorithm="xgboost", hyperparameters=RECIPE, window_days=120
    )
    assert log.outcome == "champion (first)", log.error
    return log.resulting_version


def run_day(day: dt.date, days: dict[dt.date, pd.DataFrame]):
    """One day of the pipeline: the morning forecast (from the sales before `day`), the day's
    sales arriving, the T-1 backtest of the day, and the drift check."""
    forecast_next_days(day=day)
    import_sales(source=days[day])
    backtest_yesterday(day=day)
    return detect_drift(as_of=day)


def test_drift_is_alerted_within_three_days_and_its_retrain_waits_for_a_person(
    drifting_sales, manager
):
    start = DRIFT_DATE - dt.timedelta(days=14)
    load_until(drifting_sales, start - dt.timedelta(days=1))
    champion = train_champion()

    first_drift = None
    day = start
    while first_drift is None and day <= DRIFT_DATE + dt.timedelta(days=4):
        result = run_day(day, drifting_sales)
        if result.drifting:
            first_drift = day
        day += dt.timedelta(days=1)

    assert first_drift is not None, "no drift alert in the five days after the shift"
    assert DRIFT_DATE <= first_drift <= DRIFT_DATE + dt.timedelta(days=2)
    (alert,) = MLAlert.objects.filter(alert_type="drift_detected")
    assert alert.severity == "critical"
    assert alert.metadata["champion_version"] == champion.version
    assert {"baseline_mae", "recent_mae", "drift_pct"} <= set(alert.metadata)
    (log,) = ModelRetrainingLog.objects.filter(trigger=Trigger.DRIFT_DETECTED)
    assert log.status == ModelRetrainingLog.Status.QUEUED

    # The queued emergency retrain runs (here in the test process, as a worker would).
    log = retrain_forecast_model(trigger=log.trigger, log=log)

    assert log.status == "succeeded" and log.outcome == "challenger", log.error
    challenger = log.resulting_version
    assert challenger.status == Status.CHALLENGER and challenger.trigger == Trigger.DRIFT_DETECTED
    assert get_champion_model() == champion

    # The drift goes on; the daily jobs keep running and still promote nothing on their own,
    # while the incident's root cause reads one more day each time (a week after the change).
    while day <= DRIFT_DATE + dt.timedelta(days=6):
        result = run_day(day, drifting_sales)
        day += dt.timedelta(days=1)
        assert not result.retrain_queued
    assert get_champion_model() == champion
    assert ModelRetrainingLog.objects.filter(trigger=Trigger.DRIFT_DETECTED).count() == 1
    assert not ModelTransition.objects.filter(model_version=challenger, to_status="champion")
    alert.refresh_from_db()
    assert alert.model_version == challenger and alert.occurrences >= 2
    _assert_root_cause_finds_the_shift(DriftIncident.objects.get(), drifting_sales)
    assert "Where, over " in alert.message and "Grocery" in alert.message

    # A person approves: only now does the challenger serve.
    act_on_alert(alert=alert, user=manager, action="approve", note="Reviewed the retrain")

    assert get_champion_model() == challenger
    promoted = ModelTransition.objects.get(model_version=challenger, to_status="champion")
    assert promoted.actor == manager


def _assert_root_cause_finds_the_shift(incident, sales_days):
    """At least 80% of the top 20 series are shifted ones, and each department's share of the
    extra under-forecast is within 10 points of its share of the extra demand."""
    found = incident.root_cause
    assert found["leads"] == "bias"
    assert found["recent"]["start"] == str(incident.change_date)
    assert found["recent"]["end"] == str(incident.last_checked_on)
    top = found["bias"]["top_series"]
    assert len(top) == 20
    assert sum((row["store"], row["product"]) in SHIFTED for row in top) >= 16, top
    before = pd.concat(
        rows
        for day, rows in sales_days.items()
        if DRIFT_DATE - dt.timedelta(days=28) <= day < DRIFT_DATE
    )
    keys = list(zip(before["store"], before["product"], strict=True))
    shifted = before[[key in SHIFTED for key in keys]]
    extra = shifted.groupby("department")["quantity"].sum()
    expected = (100.0 * extra / extra.sum()).to_dict()
    shares = {row["key"]: row["share_pct"] for row in found["bias"]["by_department"]}
    for department, share in expected.items():
        assert shares[department] == pytest.approx(share, abs=10.0), (department, shares)


def test_ninety_days_of_daily_detection_without_drift_raise_no_drift_alert(steady_sales):
    start = END - dt.timedelta(days=89)
    load_until(steady_sales, start - dt.timedelta(days=1))
    champion = train_champion()

    results = [run_day(start + dt.timedelta(days=n), steady_sales) for n in range(90)]

    assert [r.as_of for r in results][-1] == END
    assert all(r.status in ("ok", "insufficient_data") for r in results), [
        (r.as_of, r.rules) for r in results if r.drifting
    ]
    assert sum(r.status == "ok" for r in results) >= 80
    assert not MLAlert.objects.filter(alert_type="drift_detected").exists()
    assert not ModelRetrainingLog.objects.filter(trigger=Trigger.DRIFT_DETECTED).exists()
    assert get_champion_model() == champion
