"""An incident's timeline (its drift page's charts): the CUSUMs replayed day by day end where the
daily check that opened it found them."""

import datetime as dt

import pytest

from mlops.drift_selectors import incident_timeline
from mlops.models import DriftIncident
from mlops.services import detect_drift
from mlops.services.incidents import resolve_incident
from tests.mlops.test_drift import LAST_DAY, add_days, make_champion


@pytest.fixture
def under_forecast_incident():
    """30 quiet days, then 4 days of 15% under-forecast: the bias CUSUM opens an incident."""
    champion = make_champion()
    add_days(champion, mae=10.0, days=30, end=LAST_DAY - dt.timedelta(days=4))
    add_days(champion, mae=10.4, days=4, bias=-15.0)
    result = detect_drift()
    assert result.incident_opened and "bias_cusum" in result.rules
    return DriftIncident.objects.get(pk=result.incident_id)


def test_the_replayed_cusums_end_at_what_the_check_found(under_forecast_incident):
    incident = under_forecast_incident
    numbers = incident.detection

    timeline = incident_timeline(incident)

    assert timeline.as_of == LAST_DAY
    # Every scored day after the champion's training data (it ends on May 31).
    assert [day.day for day in timeline.days] == [
        dt.date(2025, 6, 1) + dt.timedelta(days=n) for n in range(30)
    ]
    assert sum(day.reference for day in timeline.days) == 14
    last = timeline.monitored[-1]
    assert last.error_cusum == pytest.approx(numbers["error_cusum"], abs=1e-4)
    assert max(last.bias_up, last.bias_down) == pytest.approx(numbers["bias_cusum"], abs=1e-4)
    assert timeline.error_threshold == pytest.approx(numbers["error_cusum_threshold"], abs=1e-4)
    assert timeline.bias_threshold == pytest.approx(numbers["bias_cusum_threshold"], abs=1e-4)
    assert last.bias_up > timeline.bias_threshold  # under-forecast: the upper side fired
    assert timeline.baseline_mae == 10.0 and timeline.threshold_mae == pytest.approx(11.5)


def test_the_cusum_leaves_zero_on_the_change_date(under_forecast_incident):
    incident = under_forecast_incident

    by_day = {day.day: day for day in incident_timeline(incident).monitored}

    before = by_day[incident.change_date - dt.timedelta(days=1)]
    assert before.bias_up == 0.0
    assert by_day[incident.change_date].bias_up > 0.0


def test_dismissing_the_incident_does_not_rewrite_what_it_showed(under_forecast_incident):
    incident = under_forecast_incident
    shown = incident_timeline(incident)

    resolve_incident(incident=incident, resolution="dismissed", note="a new normal", day=LAST_DAY)
    incident.refresh_from_db()

    assert incident.champion.monitoring_since == LAST_DAY  # re-baselined for the next checks
    assert incident_timeline(incident) == shown
