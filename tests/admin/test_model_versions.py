"""Model versions in the admin: the list, the review page, and promote / reject / roll back."""

import re

import pytest

from mlops.models import ModelTransition, ModelVersion
from mlops.services import promote_to_champion
from tests.admin.conftest import logged_in
from tests.admin.factories import build_arena
from tests.mlops.factories import ModelVersionFactory

Status = ModelVersion.Status


def result_rows(html: str) -> str:
    """The changelist's table of results, without its filters."""
    return re.search(r'<table id="result_list">.*?</table>', html, flags=re.S).group(0)


def status_of(version):
    return ModelVersion.objects.get(pk=version.pk).status


def review(version):
    return f"/admin/mlops/modelversion/{version.pk}/change/"


@pytest.fixture
def arena():
    return build_arena()


def test_version_list_shows_status_segment_algorithm_metrics_and_filters_by_status(viewer):
    ModelVersionFactory(
        status=Status.CHAMPION, algorithm="seasonal_naive", metrics={"mae": 4.25, "mape": 31.0}
    )
    ModelVersionFactory(status=Status.CHALLENGER, segment="department:Grocery", algorithm="xgboost")
    client = logged_in("vera")

    page = result_rows(client.get("/admin/mlops/modelversion/").content.decode())
    challengers = result_rows(
        client.get("/admin/mlops/modelversion/?status__exact=challenger").content.decode()
    )
    by_algorithm = result_rows(
        client.get("/admin/mlops/modelversion/?algorithm=seasonal_naive").content.decode()
    )

    assert "4.25 units" in page and "31.0%" in page
    assert ">Champion</span>" in page and ">Challenger</span>" in page
    assert "seasonal_naive" in page and "department:Grocery" in page
    assert "xgboost" in challengers and "seasonal_naive" not in challengers
    assert "seasonal_naive" in by_algorithm and "xgboost" not in by_algorithm


def test_review_page_draws_both_versions_backtests_on_the_same_axes(arena, viewer):
    page = logged_in("vera").get(review(arena.challenger)).content.decode()

    charts = re.findall(r'<svg class="line-chart".*?</svg>', page, flags=re.S)
    assert len(charts) == 2  # MAE and MAPE
    mae_chart = charts[0]
    assert mae_chart.count('class="point this-version"') >= 13 + 1  # 13 windows + legend
    assert mae_chart.count('class="point champion"') >= 13 + 1
    assert "MAE (units per series-day)" in mae_chart and "MAPE (%)" in charts[1]
    assert f"{arena.challenger.version} (this version)" in mae_chart
    assert f"{arena.champion.version} (champion)" in mae_chart


def test_a_challenger_of_the_champions_recipe_is_shown_beside_the_champions_walk_forward(
    arena, viewer
):
    champion = arena.champion
    retrained = ModelVersionFactory(
        name=champion.name,
        segment=champion.segment,
        algorithm=champion.algorithm,
        hyperparameters=champion.hyperparameters,
        window_days=champion.recipe_window_days,
        status=Status.CHALLENGER,
    )

    page = logged_in("vera").get(review(retrained)).content.decode()

    mae_chart = re.findall(r'<svg class="line-chart".*?</svg>', page, flags=re.S)[0]
    assert mae_chart.count('class="point champion"') >= 13 + 1
    assert (
        f"{retrained.version} is the champion's recipe trained again: a walk-forward refits the "
        "recipe at each cutoff"
    ) in page
    # A challenger of another recipe has windows of its own, and no such line.
    other = logged_in("vera").get(review(arena.challenger)).content.decode()
    assert "the champion's recipe trained again" not in other


def test_review_page_shows_metrics_decision_lineage_and_history(arena, viewer):
    challenger = arena.challenger
    page = logged_in("vera").get(review(challenger)).content.decode()

    assert "Metrics at training (held out)" in page
    mae = challenger.metrics["mae"]
    assert f"{mae:.2f} units" in page
    assert "Does not clear the promotion gate" in page or "Clears the promotion gate" in page
    assert 'id="gate-checks"' in page and "Paired test is confident enough" in page
    assert challenger.artifact_sha256 in page
    assert f">{arena.champion.version}</a> (champion)" in page  # the parent
    assert f"{challenger.training_rows}" in page
    for feature in challenger.features:
        assert feature in page
    assert "candidate → <strong>challenger</strong>" in page
    assert "Scheduled retrain kept as challenger" in page
    assert "{&quot;" not in page and '{"' not in page  # no JSON dumps


def test_review_page_shows_the_retail_pack_of_both_sides_in_words(arena, viewer):
    from forecasting.metrics import better_or_worse

    evaluation = arena.challenger.last_evaluation
    page = logged_in("vera").get(review(arena.challenger)).content.decode()

    for label in ("FVA", "MASE", "RMSSE", "wQL", "Tracking signal"):
        assert f">{label}<" in page, label
    fva = evaluation["candidate_metrics"]["fva_pct"]
    assert f"{better_or_worse(fva)} than naive" in page
    assert f"{evaluation['champion_metrics']['mase']:.3f}" in page
    assert re.search(r"\d\.\d (under|over)-forecast|0\.0 \(balanced\)", page)


def test_manager_sees_promote_and_reject_on_a_challenger_viewer_and_scientist_see_none(
    arena, manager, scientist, viewer
):
    for username, expected in (("maria", True), ("sam", False), ("vera", False)):
        page = logged_in(username).get(review(arena.challenger)).content.decode()
        assert ('id="action-promote"' in page) is expected, username
        assert ('id="action-reject"' in page) is expected, username

    champion_page = logged_in("maria").get(review(arena.champion)).content.decode()
    assert 'id="action-promote"' not in champion_page  # the FSM allows no promotion of a champion


def test_promote_page_shows_the_gate_numbers_and_asks_for_a_reason(arena, manager):
    client = logged_in("maria")

    page = client.get(f"{review(arena.challenger)[:-7]}promote/").content.decode()
    refused = client.post(f"{review(arena.challenger)[:-7]}promote/", {"reason": ""})

    assert 'id="gate-checks"' in page and 'id="gate-metrics"' in page
    assert 'name="reason"' in page
    assert refused.status_code == 200 and "This field is required" in refused.content.decode()
    assert status_of(arena.challenger) == Status.CHALLENGER


def test_manager_promotes_with_a_reason_and_the_move_is_recorded(arena, manager):
    client = logged_in("maria")
    url = f"{review(arena.challenger)[:-7]}promote/"
    champion_id = client.get(url).context["form"].initial["champion_id"]

    response = client.post(url, {"reason": "Better for four weeks", "champion_id": champion_id})

    assert response.status_code == 302 and response["Location"] == review(arena.challenger)
    assert status_of(arena.challenger) == Status.CHAMPION
    assert status_of(arena.champion) == Status.ARCHIVED
    move = arena.challenger.transitions.order_by("-pk").first()
    assert (move.to_status, move.actor_label, move.reason) == (
        "champion",
        "maria",
        "Better for four weeks",
    )
    assert move.evidence["via"] == "admin"
    assert move.evidence["gate"]["checks"] == arena.challenger.last_evaluation["checks"]


def test_promotion_confirmed_against_a_replaced_champion_is_refused(arena, manager):
    client = logged_in("maria")
    url = f"{review(arena.challenger)[:-7]}promote/"
    seen = arena.champion.pk
    newer = ModelVersionFactory(status=Status.CANDIDATE)
    promote_to_champion(version=newer, actor=None, reason="Promoted meanwhile")

    response = client.post(url, {"reason": "Looked good", "champion_id": seen})

    assert response.status_code == 200
    assert "The champion changed while you were reviewing" in response.content.decode()
    assert status_of(arena.challenger) == Status.CHALLENGER


def test_viewer_forging_a_promotion_post_gets_403_and_nothing_changes(arena, viewer, scientist):
    moves_before = ModelTransition.objects.count()
    for username in ("vera", "sam"):
        client = logged_in(username)
        for action in ("promote", "reject"):
            response = client.post(
                f"{review(arena.challenger)[:-7]}{action}/",
                {"reason": "forged", "champion_id": arena.champion.pk},
            )
            assert response.status_code == 403, (username, action)
        assert client.get(f"{review(arena.challenger)[:-7]}promote/").status_code == 403

    assert status_of(arena.challenger) == Status.CHALLENGER
    assert status_of(arena.champion) == Status.CHAMPION
    assert ModelTransition.objects.count() == moves_before


def test_manager_rejects_a_challenger(arena, manager):
    response = logged_in("maria").post(
        f"{review(arena.challenger)[:-7]}reject/", {"reason": "Worse on weekends"}
    )

    assert response.status_code == 302
    assert status_of(arena.challenger) == Status.ARCHIVED
    assert arena.challenger.transitions.order_by("-pk").first().reason == "Worse on weekends"


def test_manager_rolls_back_a_promotion_from_the_champions_page(arena, manager):
    client = logged_in("maria")
    promote_to_champion(version=arena.challenger, actor=manager, reason="Trial")

    page = client.get(review(arena.challenger)).content.decode()
    response = client.post(
        f"{review(arena.challenger)[:-7]}rollback/", {"reason": "Complaints from stores"}
    )

    assert f"Roll back to {arena.champion.version}" in page
    assert response.status_code == 302 and response["Location"] == review(arena.champion)
    assert status_of(arena.champion) == Status.CHAMPION
    assert status_of(arena.challenger) == Status.ARCHIVED


def test_a_move_the_state_does_not_allow_is_refused_without_change(arena, manager):
    response = logged_in("maria").post(
        f"{review(arena.champion)[:-7]}promote/", {"reason": "again"}
    )

    assert response.status_code == 302 and response["Location"] == review(arena.champion)
    assert status_of(arena.champion) == Status.CHAMPION


def test_a_department_model_is_charted_against_the_global_champion_on_its_own_series(viewer):
    import datetime as dt

    from mlops.models import BacktestResult

    champion = ModelVersionFactory(status=Status.CHAMPION)
    challenger = ModelVersionFactory(status=Status.CHALLENGER, segment="department:Electronics")
    for week in range(3):
        end = dt.date(2026, 3, 7) + dt.timedelta(days=7 * week)
        window = {
            "kind": "walk_forward",
            "window_start": end - dt.timedelta(days=6),
            "window_end": end,
        }
        BacktestResult.objects.create(
            model_version=champion,
            mae=9.0,
            mape=40.0,
            department_metrics={"Electronics": {"mae": 2.5, "mape": 20.0}},
            **window,
        )
        BacktestResult.objects.create(model_version=challenger, mae=2.0, mape=15.0, **window)

    page = logged_in("vera").get(review(challenger)).content.decode()

    mae_chart = re.findall(r'<svg class="line-chart".*?</svg>', page, flags=re.S)[0]
    assert f"{champion.version} (champion), Electronics series" in mae_chart
    assert "window ending 2026-03-07: 2.50 units" in mae_chart  # the department's error
    assert "9.00 units" not in mae_chart


def test_review_page_shows_importance_bars_of_both_sides_and_how_each_share_moved(viewer):
    arena = build_arena(challenger_algorithm="xgboost", with_backtests=False, with_importance=True)

    page = logged_in("vera").get(review(arena.challenger)).content.decode()

    section = re.search(
        r'<section class="module arena-section" id="importance">.*?</section>', page, flags=re.S
    ).group(0)
    challenger_bars = re.findall(
        r'<g class="importance-bar" data-feature="([^"]+)">\s*<text[^>]*>[^<]*</text>\s*<rect class="bar this-version"',
        section,
    )
    champion_bars = re.findall(
        r'<g class="importance-bar" data-feature="([^"]+)">\s*<text[^>]*>[^<]*</text>\s*<rect class="bar champion"',
        section,
    )
    # XGBoost: permutation importance and mean |contribution| of each of its features.
    assert sorted(challenger_bars) == sorted(arena.challenger.features * 2)
    assert champion_bars == ["same_weekday_last_week"]
    permutation = arena.challenger.importance["permutation"]["features"]
    assert challenger_bars[: len(permutation)] == [row["feature"] for row in permutation]
    rows = re.findall(r'<tr data-feature="([^"]+)">(.*?)</tr>', section, flags=re.S)
    assert {feature for feature, _ in rows} == {
        *arena.challenger.features,
        "same_weekday_last_week",
    }
    cells = dict(rows)
    # The naive's only input carries all its importance; XGBoost does not read it.
    assert (
        "100.0%" in cells["same_weekday_last_week"]
        and "not used" in cells["same_weekday_last_week"]
    )
    assert "100.0 points less" in cells["same_weekday_last_week"]
    assert "points more" in cells[permutation[0]["feature"]]
