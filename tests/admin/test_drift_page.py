"""A drift incident's page and its alert: the daily charts with both CUSUMs, the root cause linked
to the series explorer, the versions it leads to, and buttons that do what they say."""

import re

import pytest

from alerts.models import MLAlert
from mlops.models import DriftIncident, ModelVersion
from tests.admin.conftest import logged_in
from tests.admin.factories import (
    DRIFT_DAYS,
    answer_with_challenger,
    build_drift_incident,
)
from tests.admin.test_series_explorer import svg

REFERENCE_DAYS = 14


def decision_buttons(html: str) -> dict[str, str]:
    """The Decide form's buttons: action → label."""
    form = re.search(r'<div[^>]*id="alert-decision".*?</form>', html, re.S)
    if form is None:
        return {}
    return {
        action: " ".join(label.split())
        for action, label in re.findall(
            r'<button type="submit" name="action" value="(\w+)"[^>]*>(.*?)</button>',
            form.group(0),
            re.S,
        )
    }


@pytest.fixture
def drift():
    return build_drift_incident()


def drift_page(incident: DriftIncident, username: str = "maria") -> str:
    response = logged_in(username).get(f"/admin/mlops/driftincident/{incident.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_drift_page_charts_every_day_and_both_cusums_against_their_thresholds(manager, drift):
    html = drift_page(drift.incident)

    mae = svg(html, "Daily T-1 MAE")
    assert mae.count('class="point drift-mae"') == DRIFT_DAYS
    assert 'data-days="40"' in mae
    assert mae.count('class="day-mark reference-day"') == REFERENCE_DAYS
    assert 'class="rule threshold"' in mae and "threshold rule: 15% worse" in mae
    bias = svg(html, "Daily T-1 bias")
    assert bias.count('class="point drift-bias"') == DRIFT_DAYS
    monitored = DRIFT_DAYS - REFERENCE_DAYS
    error_cusum = svg(html, "Error CUSUM")
    assert error_cusum.count('class="point cusum-up"') == monitored
    bias_cusum = svg(html, "Bias CUSUM")
    assert bias_cusum.count('class="point cusum-up"') == monitored
    assert bias_cusum.count('class="point cusum-down"') == monitored
    for chart in (mae, bias, error_cusum, bias_cusum):
        assert 'class="marker change-date"' in chart
        assert f"change {drift.change_date:%b %d}" in chart
    for chart in (error_cusum, bias_cusum):
        assert chart.count('class="rule threshold"') == 1


def test_root_cause_series_link_to_the_series_explorer(manager, drift):
    html = drift_page(drift.incident)

    links = re.findall(r'<a class="explore-series" href="([^"]+)">([^<]+)</a>', html)

    assert [text for _, text in links] == ["S001 / SKU001", "S001 / SKU002"]
    start = drift.change_date.toordinal() - 28
    url = links[0][0].replace("&amp;", "&")
    assert url.startswith("/admin/series/?store=S001&product=SKU001&start=")
    assert f"start={type(drift.change_date).fromordinal(start).isoformat()}" in url
    assert f"end={drift.last_day.isoformat()}" in url


def test_without_a_challenger_the_alert_offers_acknowledge_and_dismiss_only(manager, drift):
    page = drift_page(drift.incident)
    alert_page = logged_in("maria").get(f"/admin/alerts/mlalert/{drift.alert.pk}/change/")

    for html in (page, alert_page.content.decode()):
        buttons = decision_buttons(html)
        assert set(buttons) == {"acknowledge", "dismiss"}
        assert buttons["acknowledge"] == "Acknowledge (the drift incident stays open)"
        assert buttons["dismiss"] == (
            f"Dismiss: accept the new level ({drift.champion.version} re-baselined, no new "
            "drift incident for 7 days)"
        )
    assert "none yet" in page  # no challenger to link to


def test_a_recommended_challenger_is_offered_for_approval_by_name_with_its_comparison(
    manager, drift
):
    challenger = answer_with_challenger(drift, recommended=True)

    html = drift_page(drift.incident)

    buttons = decision_buttons(html)
    assert set(buttons) == {"approve", "dismiss"}
    assert buttons["approve"] == f"Approve: promote {challenger.version} to champion"
    assert f"{challenger.version} kept as challenger" in buttons["dismiss"]
    comparison = re.search(r'<tr id="drift-link-comparison">.*?</tr>', html, re.S).group(0)
    assert f"/admin/mlops/modelversion/{challenger.pk}/change/#decision" in comparison
    assert "on 7 day(s) after the change its MAE is 14.2% better" in comparison
    champion_link = re.search(r'<tr id="drift-link-champion">.*?</tr>', html, re.S).group(0)
    assert f"/admin/mlops/modelversion/{drift.champion.pk}/change/" in champion_link


def test_a_challenger_without_enough_days_after_the_change_is_not_offered(manager, drift):
    answer_with_challenger(drift, recommended=False, days=3)

    assert set(decision_buttons(drift_page(drift.incident))) == {"acknowledge", "dismiss"}


def test_evidence_from_an_earlier_incident_is_not_offered_for_this_one(manager, drift):
    # A challenger kept from an earlier incident waits with that incident's verdict until the
    # daily judging looks at this incident's days.
    challenger = answer_with_challenger(drift, recommended=True)
    ModelVersion.objects.filter(pk=challenger.pk).update(
        last_evaluation={**challenger.last_evaluation, "incident_id": drift.incident.pk + 1000}
    )

    assert "approve" not in decision_buttons(drift_page(drift.incident))


def test_approving_from_the_drift_page_promotes_the_named_challenger(manager, drift):
    challenger = answer_with_challenger(drift, recommended=True)
    client = logged_in("maria")
    page = f"/admin/mlops/driftincident/{drift.incident.pk}/change/"

    response = client.post(
        f"/admin/alerts/mlalert/{drift.alert.pk}/decide/",
        {"action": "approve", "note": "clear evidence", "next": page},
    )

    assert response.status_code == 302 and response["Location"] == page
    assert ModelVersion.objects.get(pk=challenger.pk).status == "champion"
    incident = DriftIncident.objects.get(pk=drift.incident.pk)
    assert incident.resolution == DriftIncident.Resolution.NEW_CHAMPION
    assert MLAlert.objects.get(pk=drift.alert.pk).status == MLAlert.Status.ACTIONED


def test_a_next_address_off_the_site_is_not_followed(manager, drift):
    response = logged_in("maria").post(
        f"/admin/alerts/mlalert/{drift.alert.pk}/decide/",
        {"action": "acknowledge", "next": "https://evil.example/"},
    )

    assert response["Location"] == f"/admin/alerts/mlalert/{drift.alert.pk}/change/"


def test_a_viewer_sees_the_page_without_buttons(viewer, drift):
    html = drift_page(drift.incident, "vera")

    assert 'id="drift-charts"' in html
    assert decision_buttons(html) == {}


def test_the_alert_shows_its_details_as_a_labelled_table_and_leads_to_the_drift_page(
    manager, drift
):
    client = logged_in("maria")

    alert_page = client.get(f"/admin/alerts/mlalert/{drift.alert.pk}/change/").content.decode()
    inbox = client.get("/admin/alerts/mlalert/").content.decode()

    assert '<tr data-key="baseline_mae"><th>Baseline MAE</th><td>10</td></tr>' in alert_page
    assert '<tr data-key="drift_pct"><th>Drift %</th><td>25</td></tr>' in alert_page
    assert '<tr data-key="incident_id"><th>Incident ID</th>' in alert_page
    assert '{"baseline_mae"' not in alert_page and "&quot;baseline_mae&quot;" not in alert_page
    drift_url = f"/admin/mlops/driftincident/{drift.incident.pk}/change/"
    assert f'href="{drift_url}">Open drift incident #{drift.incident.pk}' in alert_page
    assert f'href="{drift_url}">Open drift incident #{drift.incident.pk}' in inbox


def test_the_incident_is_reachable_from_home_and_from_the_champions_page(manager, drift):
    client = logged_in("maria")
    drift_url = f"/admin/mlops/driftincident/{drift.incident.pk}/change/"

    home = client.get("/admin/").content.decode()
    review = client.get(f"/admin/mlops/modelversion/{drift.champion.pk}/change/").content.decode()
    incidents = client.get("/admin/mlops/driftincident/").content.decode()

    card = re.search(r'<div class="arena-card model-card".*?</div>\s*</div>\s*</div>', home, re.S)
    assert "Drifting" in card.group(0)
    assert f'href="{drift_url}"' in card.group(0)
    assert f'href="{drift_url}"' in review and "the drifted champion" in review
    assert f'href="{drift_url}"' in incidents
