"""Drift as incidents: one incident, one alert and one email per drift, until a new champion, a
dismissal or recovery closes it; its reference is built from scored days only."""

import datetime as dt

import pytest

from alerts.models import MLAlert, NotificationChannel, NotificationDelivery
from alerts.services import act_on_alert
from mlops.models import BacktestResult, DriftIncident, ModelRetrainingLog, ModelVersion, Trigger
from mlops.services import detect_drift, promote_to_champion
from mlops.services.drift_text import drift_alert_text
from tests.mlops.factories import ModelVersionFactory
from tests.mlops.test_drift import LAST_DAY, add_days, make_champion

Status = ModelVersion.Status
pytestmark = pytest.mark.django_db(transaction=False)


def check_days(first: dt.date, last: dt.date) -> list:
    """The daily drift check of each day, each day's work committed (deliveries included)."""
    from django.test import TestCase

    results, day = [], first
    while day <= last:
        with TestCase.captureOnCommitCallbacks(execute=True):
            results.append(detect_drift(as_of=day))
        day += dt.timedelta(days=1)
    return results


def emails_of(alert: MLAlert) -> int:
    return NotificationDelivery.objects.filter(
        alert=alert, channel__kind=NotificationChannel.Kind.EMAIL, status="sent"
    ).count()


@pytest.fixture
def eager(mailoutbox):
    """Alert deliveries run in the test (the in-memory outbox receives the emails)."""
    from config.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def test_a_lasting_drift_is_one_incident_one_alert_one_email_and_one_retrain(manager, eager):
    champion = make_champion()
    add_days(champion, mae=10.0, days=30, end=LAST_DAY - dt.timedelta(days=10))
    add_days(champion, mae=13.0, days=10)  # 30% worse for ten days running

    results = check_days(LAST_DAY - dt.timedelta(days=9), LAST_DAY)

    (incident,) = DriftIncident.objects.all()
    assert incident.status == DriftIncident.Status.OPEN
    assert sum(result.incident_opened for result in results) == 1
    assert incident.change_date <= incident.opened_on
    (alert,) = MLAlert.objects.filter(alert_type="drift_detected")
    assert alert.pk == incident.alert_id and alert.occurrences >= 5
    assert emails_of(alert) == 1  # updated in place every day, emailed once
    assert ModelRetrainingLog.objects.filter(trigger=Trigger.DRIFT_DETECTED).count() == 1
    assert incident.retrain_log.trigger_metadata["incident_id"] == incident.pk


def test_a_quiet_week_closes_the_incident_as_recovered(manager, eager):
    champion = make_champion()
    add_days(champion, mae=10.0, days=30, end=LAST_DAY - dt.timedelta(days=20))
    add_days(champion, mae=14.0, days=4, end=LAST_DAY - dt.timedelta(days=16))
    add_days(champion, mae=10.0, days=16)  # back to its level

    results = check_days(LAST_DAY - dt.timedelta(days=19), LAST_DAY)

    (incident,) = DriftIncident.objects.all()
    assert incident.resolution == DriftIncident.Resolution.RECOVERED
    drifting_days = [result.as_of for result in results if result.drifting]
    # Closed on the seventh check in a row with no rule firing.
    assert incident.resolved_on == max(drifting_days) + dt.timedelta(days=7)
    alert = MLAlert.objects.get(pk=incident.alert_id)
    assert alert.status == MLAlert.Status.RESOLVED
    assert "recovered" in alert.action_note
    assert emails_of(alert) == 1


def test_dismissing_rebaselines_the_champion_and_snoozes_new_incidents(manager, eager):
    champion = make_champion()
    add_days(champion, mae=10.0, days=30, end=LAST_DAY - dt.timedelta(days=20))
    add_days(champion, mae=13.0, days=20)  # the new normal
    check_days(LAST_DAY - dt.timedelta(days=19), LAST_DAY - dt.timedelta(days=15))
    (incident,) = DriftIncident.objects.all()

    act_on_alert(alert=incident.alert, user=manager, action="dismiss", note="new normal")

    incident.refresh_from_db()
    assert incident.resolution == DriftIncident.Resolution.DISMISSED
    assert incident.resolved_by == manager
    champion.refresh_from_db()
    assert champion.monitoring_since == incident.resolved_on
    # The same level every day after: no new incident, no new email, nothing queued.
    later = check_days(LAST_DAY - dt.timedelta(days=14), LAST_DAY)
    assert DriftIncident.objects.count() == 1
    assert not any(result.incident_opened for result in later)
    assert MLAlert.objects.filter(alert_type="drift_detected").count() == 1
    assert ModelRetrainingLog.objects.filter(trigger=Trigger.DRIFT_DETECTED).count() == 1


def test_a_new_champion_closes_the_incident_and_its_alert(manager, eager):
    champion = make_champion()
    add_days(champion, mae=10.0, days=30, end=LAST_DAY - dt.timedelta(days=7))
    add_days(champion, mae=13.0, days=7)
    detect_drift()
    (incident,) = DriftIncident.objects.all()
    successor = ModelVersionFactory(status=Status.CHALLENGER)

    promote_to_champion(version=successor, actor=manager, reason="fresh")

    incident.refresh_from_db()
    assert incident.resolution == DriftIncident.Resolution.NEW_CHAMPION
    assert MLAlert.objects.get(pk=incident.alert_id).status == MLAlert.Status.RESOLVED


def test_an_early_day_without_scored_points_does_not_disable_the_cusums():
    champion = make_champion()
    first = champion.training_end + dt.timedelta(days=1)
    BacktestResult.objects.create(
        model_version=champion,
        kind="t_minus_1",
        window_start=first,
        window_end=first,
        n_points=0,
        n_missing=100,
    )
    add_days(champion, mae=10.0, days=29)  # every later day scored

    result = detect_drift()

    assert result.reference_start > first  # the unscored day is skipped
    assert result.error_cusum is not None and result.bias_cusum is not None


def unsaved_incident(*, champion: str, pk: int = 1, **fields) -> DriftIncident:
    """A global incident of `demand_forecast` whose champion is version `champion` (nothing
    saved: the alert's text reads only these)."""
    version = ModelVersion(name="demand_forecast", segment="global", version=champion)
    return DriftIncident(
        pk=pk, champion=version, name="demand_forecast", segment="global", **fields
    )


def test_a_bias_alert_says_where_the_bias_moved_from():
    incident = unsaved_incident(
        champion="v8",
        change_date=dt.date(2026, 10, 11),
        opened_on=dt.date(2026, 10, 16),
        detection={"rules": "bias_cusum", "recent_bias_pct": 0.91, "reference_bias_pct": -3.48},
    )

    title, _ = drift_alert_text(incident=incident, result=None, next_step="")

    assert title == (
        "Model drift detected — demand_forecast v8: forecasts run 0.9% above demand, against "
        "3.5% below demand at first"
    )


def test_an_alert_carried_on_by_a_refresh_says_where_the_drift_was_found():
    incident = unsaved_incident(
        pk=2,
        champion="v12",
        change_date=dt.date(2026, 11, 26),
        opened_on=dt.date(2026, 12, 2),
        detection={"rules": "threshold", "drift_pct": 16.26, "champion_version": "v9"},
        latest={"rules": "threshold", "drift_pct": 15.12, "champion_version": "v12"},
    )

    title, message = drift_alert_text(incident=incident, result=None, next_step="")

    assert title == "Model drift detected — demand_forecast v12: MAE 15.1% worse than its baseline"
    assert message.startswith(
        "Champion v12 of demand_forecast (refreshed from v9, in which the drift was found: the "
        "rules read the forecasts its recipe served, against the baseline it began with) no "
        "longer fits the sales: drift since 2026-11-26 (incident #2, found on 2026-12-02)."
    )
