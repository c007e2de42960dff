"""The drift page and the series explorer in a real browser: the charts' points per day, the root
cause's series, and the alert's buttons before and after a challenger has evidence."""

import datetime as dt

import pytest
from selenium.webdriver.common.by import By

from mlops.models import DriftIncident, ModelVersion
from tests.admin.browser import log_in, screenshot, submit, wait_for
from tests.admin.factories import (
    DRIFT_DAYS,
    PROMOTION_DAYS,
    SERIES_DAYS,
    SHADOW_DAYS,
    STOCK_OUT_DAYS,
    answer_with_challenger,
    build_drift_incident,
    build_series_days,
    staff_user,
)
from tests.mlops.factories import ModelVersionFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
REFERENCE_DAYS = 14


def chart(browser, title_start: str):
    return browser.find_element(By.CSS_SELECTOR, f"svg.time-chart[aria-label^='{title_start}']")


def points(svg, css_class: str) -> int:
    return len(svg.find_elements(By.CSS_SELECTOR, f"circle.point.{css_class}"))


def buttons(browser) -> set[str]:
    return {
        button.get_attribute("value")
        for button in browser.find_elements(By.CSS_SELECTOR, "#alert-decision button")
    }


def test_drift_page_charts_the_cusums_lists_the_root_cause_and_offers_approve_only_with_evidence(
    browser, acme_live
):
    drift = build_drift_incident()
    staff_user("ml_manager", "maria")
    log_in(browser, acme_live, "maria")

    # From the inbox: the drift alert leads to its incident's page.
    browser.get(f"{acme_live}/admin/alerts/mlalert/")
    browser.find_element(By.LINK_TEXT, f"Open drift incident #{drift.incident.pk}").click()
    wait_for(browser, "#drift-charts svg.time-chart")

    mae = chart(browser, "Daily T-1 MAE")
    assert mae.get_attribute("data-days") == str(DRIFT_DAYS)
    assert points(mae, "drift-mae") == DRIFT_DAYS
    monitored = DRIFT_DAYS - REFERENCE_DAYS
    assert points(chart(browser, "Error CUSUM"), "cusum-up") == monitored
    bias_cusum = chart(browser, "Bias CUSUM")
    assert points(bias_cusum, "cusum-up") == points(bias_cusum, "cusum-down") == monitored
    for svg in browser.find_elements(By.CSS_SELECTOR, "#drift-charts svg.time-chart"):
        assert svg.find_elements(By.CSS_SELECTOR, "line.marker.change-date")
    assert bias_cusum.find_elements(By.CSS_SELECTOR, "line.rule.threshold")
    series = browser.find_elements(By.CSS_SELECTOR, "a.explore-series")
    assert [link.text for link in series] == ["S001 / SKU001", "S001 / SKU002"]
    # Nothing to promote yet: acknowledge or dismiss.
    assert buttons(browser) == {"acknowledge", "dismiss"}
    screenshot(browser, "drift-page")

    # The emergency retrain's challenger beats the drifted champion after the change.
    challenger = answer_with_challenger(drift, recommended=True)
    browser.refresh()
    wait_for(browser, "#alert-decision")
    assert buttons(browser) == {"approve", "dismiss"}
    approve = browser.find_element(By.CSS_SELECTOR, "#alert-decision button[value=approve]")
    assert approve.text == f"Approve: promote {challenger.version} to champion"
    assert "14.2% better" in browser.find_element(By.ID, "drift-link-comparison").text
    browser.find_element(By.ID, "id_note").send_keys("Better on every day since the change")
    submit(browser, "#alert-decision button[value=approve]")

    assert "promoted to champion" in browser.find_element(By.CSS_SELECTOR, ".messagelist").text
    assert ModelVersion.objects.get(pk=challenger.pk).status == "champion"
    incident = DriftIncident.objects.get(pk=drift.incident.pk)
    assert incident.resolution == DriftIncident.Resolution.NEW_CHAMPION
    assert buttons(browser) == set()  # the alert is closed


def test_series_explorer_from_home_charts_each_day_and_the_serving_version(browser, acme_live):
    champion = ModelVersionFactory(status=ModelVersion.Status.CHAMPION)
    shadow = ModelVersionFactory(status=ModelVersion.Status.SHADOW)
    data = build_series_days(
        served_by=champion, shadow=shadow, last_day=dt.date.today() - dt.timedelta(days=1)
    )
    staff_user("viewer", "vera")
    log_in(browser, acme_live, "vera")

    browser.find_element(By.CSS_SELECTOR, "#series-explorer-card input[name=store]").send_keys(
        "S001"
    )
    browser.find_element(By.CSS_SELECTOR, "#series-explorer-card input[name=product]").send_keys(
        "SKU001"
    )
    submit(browser, "#series-explorer-card button[type=submit]")
    svg = wait_for(browser, "#series-chart svg.time-chart")

    assert svg.get_attribute("data-days") == str(SERIES_DAYS)
    assert points(svg, "actual") == SERIES_DAYS - len(STOCK_OUT_DAYS)
    assert points(svg, "served") == SERIES_DAYS
    assert points(svg, "shadow-0") == SHADOW_DAYS
    assert svg.find_element(By.CSS_SELECTOR, "path.band.served-band").get_attribute("d")
    assert len(svg.find_elements(By.CSS_SELECTOR, "rect.day-mark.promotion-day")) == len(
        PROMOTION_DAYS
    )
    assert len(svg.find_elements(By.CSS_SELECTOR, "rect.day-mark.censored-day")) == len(
        STOCK_OUT_DAYS
    )
    strip = browser.find_elements(By.CSS_SELECTOR, "svg.serving-strip rect.serving-day")
    assert len(strip) == SERIES_DAYS
    assert {cell.get_attribute("data-version") for cell in strip} == {champion.version}
    assert data.first.isoformat() in browser.find_element(By.NAME, "start").get_attribute("value")
    screenshot(browser, "series-explorer")
