"""The admin in a real browser: a manager's day (review, promote, inbox, experiments) and a viewer's."""

import pytest
from selenium.webdriver.common.by import By

from alerts.models import MLAlert
from alerts.services import raise_alert
from experiments.models import ModelExperiment
from experiments.services import propose_experiment
from mlops.models import ModelTransition, ModelVersion
from tests.admin.browser import log_in, screenshot, submit, wait_for
from tests.admin.factories import build_arena, staff_user

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_manager_reviews_and_promotes_a_challenger_approves_an_alert_and_an_experiment(
    browser, acme_live
):
    arena = build_arena(challenger_algorithm="xgboost")
    staff_user("ml_manager", "maria")
    scientist = staff_user("data_scientist", "sam")
    experiment = propose_experiment(
        actor=scientist,
        name="Deeper trees",
        hypothesis="Deeper trees catch promotion weekends better.",
        experiment_type="hyperparameters",
        configuration={"algorithm": "xgboost", "hyperparameters": {"max_depth": 6}},
        expected_improvement_pct=5.0,
    )
    alert = raise_alert(
        alert_type=MLAlert.AlertType.BACKTEST_DEGRADATION,
        severity=MLAlert.Severity.WARNING,
        title="Weekly backtest: MAE of v1 up 12% on Electronics",
        message="The weekly walk-forward MAE of the champion rose 12% over four weeks.",
        model_version=arena.champion,
    )

    log_in(browser, acme_live, "maria")
    # Home: the champion and challenger cards carry the selector's numbers.
    card = wait_for(browser, ".model-card[data-segment='global']")
    assert arena.champion.version in card.find_element(By.CSS_SELECTOR, ".champion-side").text
    assert "units" in card.find_element(By.CSS_SELECTOR, ".champion-side .mae-7d").text
    assert arena.challenger.version in card.find_element(By.CSS_SELECTOR, ".challenger-side").text
    badge = browser.find_element(By.ID, "unread-alerts-badge")
    assert "1" in badge.text
    # The app list's captions wear the project's palette (light theme), not a default colour.
    caption_colour = browser.execute_script(
        "return getComputedStyle(document.querySelector('.module caption')).backgroundColor"
    )
    assert caption_colour == "rgb(59, 106, 140)"
    screenshot(browser, "home")

    # Review page: the backtest chart is drawn with a point per window for both versions.
    card.find_element(By.LINK_TEXT, f"Review {arena.challenger.version}").click()
    chart = wait_for(browser, "svg.line-chart")
    assert len(chart.find_elements(By.CSS_SELECTOR, "circle.point.this-version")) >= 13
    assert len(chart.find_elements(By.CSS_SELECTOR, "circle.point.champion")) >= 13
    assert chart.find_element(By.CSS_SELECTOR, "path.series.this-version").get_attribute("d")
    screenshot(browser, "review")

    # Promote with a reason, after seeing the gate's numbers.
    browser.find_element(By.ID, "action-promote").click()
    wait_for(browser, "#gate-checks")
    browser.find_element(By.NAME, "reason").send_keys("Lower error for four weeks running")
    screenshot(browser, "promote-confirm")
    submit(browser, "#confirm-transition")
    assert "is now the champion" in browser.find_element(By.CSS_SELECTOR, ".messagelist").text
    assert ModelVersion.objects.get(pk=arena.challenger.pk).status == "champion"
    assert ModelVersion.objects.get(pk=arena.champion.pk).status == "archived"
    browser.get(f"{acme_live}/admin/")
    champion_side = wait_for(browser, ".model-card[data-segment='global'] .champion-side")
    assert arena.challenger.version in champion_side.text

    # Inbox: open the alert, approve it with a note.
    browser.find_element(By.ID, "unread-alerts-badge").click()
    wait_for(browser, "#result_list")
    screenshot(browser, "inbox")
    browser.find_element(By.LINK_TEXT, alert.title).click()
    wait_for(browser, "#alert-decision")
    screenshot(browser, "alert")
    browser.find_element(By.NAME, "note").send_keys("Expected after the promotion")
    # Nothing to promote: the alert is acknowledged (approve is offered for a challenger only).
    assert not browser.find_elements(By.CSS_SELECTOR, "#alert-decision button[value=approve]")
    submit(browser, "#alert-decision button[value=acknowledge]")
    alert.refresh_from_db()
    assert alert.status == MLAlert.Status.ACTIONED
    assert alert.action_note == "Expected after the promotion"

    # Experiments: a manager approves a proposal with a note.
    browser.get(f"{acme_live}/admin/experiments/modelexperiment/{experiment.pk}/change/")
    wait_for(browser, "#experiment-steps")
    screenshot(browser, "experiment")
    browser.find_element(By.ID, "id_note").send_keys("Go ahead, two weeks of shadow")
    submit(browser, "#step-approve")
    assert "approved" in browser.find_element(By.CSS_SELECTOR, ".messagelist").text
    experiment.refresh_from_db()
    assert experiment.status == ModelExperiment.Status.APPROVED
    assert experiment.approved_by.username == "maria"


def test_viewer_sees_no_transition_buttons_and_a_hand_forged_post_is_refused(browser, acme_live):
    arena = build_arena()
    staff_user("viewer", "vera")
    moves = ModelTransition.objects.count()

    log_in(browser, acme_live, "vera")
    browser.get(f"{acme_live}/admin/mlops/modelversion/{arena.challenger.pk}/change/")
    wait_for(browser, "svg.line-chart")
    assert not browser.find_elements(By.ID, "transition-buttons")
    assert not browser.find_elements(By.CSS_SELECTOR, "[id^=action-]")

    # A promotion form forged in the page, posted with the viewer's own session and CSRF token.
    status, body = browser.execute_script(
        """
        const token = document.cookie.split('; ').find(c => c.startsWith('csrftoken=')).split('=')[1];
        const body = new URLSearchParams({csrfmiddlewaretoken: token, reason: 'forged',
                                          champion_id: arguments[1]});
        const response = await fetch(arguments[0], {method: 'POST', body: body,
                                                     credentials: 'same-origin'});
        return [response.status, await response.text()];
        """,
        f"/admin/mlops/modelversion/{arena.challenger.pk}/promote/",
        str(arena.champion.pk),
    )

    assert status == 403
    assert "CSRF" not in body  # refused for want of the permission, not for a bad token
    assert ModelVersion.objects.get(pk=arena.challenger.pk).status == "challenger"
    assert ModelVersion.objects.get(pk=arena.champion.pk).status == "champion"
    assert ModelTransition.objects.count() == moves


def test_review_page_draws_both_versions_feature_importance_and_how_each_share_moved(
    browser, acme_live
):
    arena = build_arena(challenger_algorithm="xgboost", with_backtests=False, with_importance=True)
    staff_user("viewer", "vera")
    ranked = [row["feature"] for row in arena.challenger.importance["permutation"]["features"]]

    log_in(browser, acme_live, "vera")
    browser.get(f"{acme_live}/admin/mlops/modelversion/{arena.challenger.pk}/change/")
    section = wait_for(browser, "#importance")

    # The challenger (XGBoost): a bar per feature, largest permutation importance first, and
    # a second chart of its mean |contribution|.
    challenger = section.find_element(By.ID, "importance-this-version")
    permutation = challenger.find_element(By.CSS_SELECTOR, "svg.ranked-bar-chart.permutation")
    bars = permutation.find_elements(By.CSS_SELECTOR, "g.importance-bar")
    assert [bar.get_attribute("data-feature") for bar in bars] == ranked
    assert [bar.find_element(By.CSS_SELECTOR, "text.bar-label").text for bar in bars] == ranked
    assert len(permutation.find_elements(By.CSS_SELECTOR, "rect.bar.this-version")) == len(ranked)
    assert float(bars[0].find_element(By.TAG_NAME, "rect").get_attribute("width")) > 0
    contribution = challenger.find_element(By.CSS_SELECTOR, "svg.ranked-bar-chart.contribution")
    assert len(contribution.find_elements(By.CSS_SELECTOR, "rect.bar.this-version")) == len(ranked)
    # The champion (seasonal naive): one input, one bar.
    champion = section.find_element(By.ID, "importance-champion")
    champion_bars = champion.find_elements(By.CSS_SELECTOR, "svg.permutation g.importance-bar")
    assert [bar.get_attribute("data-feature") for bar in champion_bars] == [
        "same_weekday_last_week"
    ]

    # The difference table: every feature of either side, with both shares and the change.
    rows = section.find_elements(By.CSS_SELECTOR, "#importance-differences tbody tr")
    assert len(rows) == len(ranked) + 1
    cells = {
        row.get_attribute("data-feature"): [
            cell.text for cell in row.find_elements(By.TAG_NAME, "td")
        ]
        for row in rows
    }
    assert set(cells) == {*ranked, "same_weekday_last_week"}
    assert cells["same_weekday_last_week"][1:] == ["100.0%", "not used", "100.0 points less"]
    assert cells[ranked[0]][1] == "not used" and cells[ranked[0]][3].endswith("points more")
    section.location_once_scrolled_into_view  # noqa: B018 - scrolls the section into view
    screenshot(browser, "review-explanations")
