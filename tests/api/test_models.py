"""Model registry API: health, history, backtest trend, promotion, rollback, retrains."""

import datetime as dt

import pytest

from mlops.models import BacktestResult, ModelRetrainingLog, ModelTransition, ModelVersion
from tests.api.clients import assert_error, client_for
from tests.api.factories import ModelVersionFactory

Status = ModelVersion.Status


@pytest.fixture
def arena():
    """v12 champion and v13 challenger of the global segment, v14 champion of Electronics."""
    champion = ModelVersionFactory(version_number=12, status=Status.CHAMPION, metrics={"mae": 12.0})
    challenger = ModelVersionFactory(
        version_number=13,
        status=Status.CHALLENGER,
        routing_mode="shadow",
        last_evaluation={"promote": True, "test": {"confidence": 0.97}},
    )
    electronics = ModelVersionFactory(
        version_number=14, status=Status.CHAMPION, segment="department:Electronics"
    )
    end = dt.date(2026, 2, 20)
    for day in range(10):
        BacktestResult.objects.create(
            model_version=champion,
            kind=BacktestResult.Kind.T_MINUS_1,
            window_start=end - dt.timedelta(days=day),
            window_end=end - dt.timedelta(days=day),
            mae=11.0,
            n_points=100,
        )
    return {"champion": champion, "challenger": challenger, "electronics": electronics}


def test_health_has_the_spec_shape_for_global_and_lists_department_segments(viewer, arena):
    response = client_for(viewer).get("/api/v1/models/health")

    assert response.status_code == 200
    body = response.json()
    assert body["champion"]["version"] == "v12"
    assert body["champion"]["mae_7d"] == pytest.approx(11.0)
    assert body["champion"]["status"] == "healthy"
    assert {"mae_30d", "trend", "promoted_at"} <= set(body["champion"])
    retail = {"fva_pct_7d", "mase_7d", "rmsse_7d", "wql_7d", "tracking_signal_7d"}
    assert retail <= set(body["champion"]) and retail <= set(body["challenger"])
    assert body["challenger"]["version"] == "v13"
    assert body["challenger"]["status"] == "shadow_testing"
    assert body["challenger"]["promotion_eligible"] is True
    assert body["challenger"]["confidence"] == pytest.approx(0.97)
    assert [s["segment"] for s in body["segments"]] == ["department:Electronics"]
    assert body["segments"][0]["champion"]["version"] == "v14"


def test_health_of_a_model_without_versions_has_no_champion(viewer):
    body = client_for(viewer).get("/api/v1/models/health?name=other").json()
    assert body == {
        "name": "other",
        "segment": "global",
        "champion": None,
        "challenger": None,
        "challengers": [],
        "canary": None,
        "segments": [],
    }


def test_health_refuses_an_overlong_model_name(viewer):
    response = client_for(viewer).get("/api/v1/models/health", {"name": "x" * 65})
    assert "name" in assert_error(response, 400, "validation_error")["details"]["fields"]


def test_health_needs_a_role(no_role):
    assert_error(client_for(no_role).get("/api/v1/models/health"), 403, "permission_denied")


def test_backtest_trend_charts_every_window_of_the_latest_walk_forward(viewer, arena):
    champion = arena["champion"]
    last = dt.date(2026, 2, 16)
    for week in range(16):  # 16 weekly windows, the oldest outside the 90 days
        start = last - dt.timedelta(weeks=week)
        BacktestResult.objects.create(
            model_version=champion,
            kind=BacktestResult.Kind.WALK_FORWARD,
            window_start=start,
            window_end=start + dt.timedelta(days=6),
            mae=10.0 + week,
            mape=float("nan"),
            fva_pct=12.5,
            mase=0.8,
            rmsse=0.9,
            wql=0.31,
            tracking_signal=float("inf"),
            n_points=700,
        )

    response = client_for(viewer).get("/api/v1/models/backtest/v12")

    assert response.status_code == 200, response.content
    body = response.json()
    # The 13 weekly windows of the 90 days up to 22 Feb (91 days), not the older ones.
    assert (body["version"], body["kind"], body["days"]) == ("v12", "walk_forward", 91)
    starts = [point["window_start"] for point in body["points"]]
    assert starts == sorted(starts) and len(starts) == 13
    assert starts[0] == str(last - dt.timedelta(weeks=12))
    assert body["points"][-1]["mae"] == 10.0
    assert body["points"][-1]["mape"] is None  # not computable: null, never NaN
    retail = {name: body["points"][-1][name] for name in ("fva_pct", "mase", "rmsse", "wql")}
    assert retail == {"fva_pct": 12.5, "mase": 0.8, "rmsse": 0.9, "wql": 0.31}
    assert body["points"][-1]["tracking_signal"] is None  # never inf in JSON
    # Asked for days, the windows that start within them.
    asked = client_for(viewer).get("/api/v1/models/backtest/v12?days=90").json()
    assert (asked["days"], len(asked["points"])) == (90, 12)  # started after 22 Feb - 90 days
    daily = client_for(viewer).get("/api/v1/models/backtest/v12?kind=t_minus_1&days=7").json()
    assert len(daily["points"]) == 7


def test_backtest_trend_validates_and_404s(viewer, arena):
    client = client_for(viewer)
    fields = assert_error(
        client.get("/api/v1/models/backtest/v12?days=3&kind=yearly"), 400, "validation_error"
    )["details"]["fields"]
    assert set(fields) == {"days", "kind"}
    assert_error(client.get("/api/v1/models/backtest/v404"), 404)
    assert_error(client_for(None).get("/api/v1/models/backtest/v12"), 401)


def test_history_lists_versions_with_their_transitions(manager, viewer, arena):
    client_for(manager).post("/api/v1/models/v13/promote", {"reason": "beats v12"}, format="json")

    body = client_for(viewer).get("/api/v1/models/history?status=champion").json()

    versions = {v["version"]: v for v in body["results"]}
    assert set(versions) == {"v13", "v14"}
    (move,) = versions["v13"]["transitions"]
    assert (move["from_status"], move["to_status"], move["actor"]) == (
        "challenger",
        "champion",
        "maria",
    )
    assert move["reason"] == "beats v12"


def test_history_rejects_an_unknown_status(viewer):
    response = client_for(viewer).get("/api/v1/models/history?status=retired")
    assert_error(response, 400, "validation_error")


def test_manager_promotes_a_challenger_and_the_old_champion_retires(manager, arena):
    response = client_for(manager).post(
        "/api/v1/models/v13/promote", {"reason": "Reviewed"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "champion"
    arena["champion"].refresh_from_db()
    assert arena["champion"].status == Status.ARCHIVED
    assert ModelTransition.objects.filter(
        model_version=arena["challenger"], to_status="champion", actor_label="maria"
    ).exists()


@pytest.mark.parametrize("role", ["viewer", "scientist"])
def test_only_a_manager_may_promote(role, request, arena):
    user = request.getfixturevalue(role)
    response = client_for(user).post(
        "/api/v1/models/v13/promote", {"reason": "Looks good"}, format="json"
    )
    assert_error(response, 403, "permission_denied")
    arena["challenger"].refresh_from_db()
    assert arena["challenger"].status == Status.CHALLENGER


def test_promotion_needs_a_reason_and_the_right_segment(manager, arena):
    client = client_for(manager)
    missing = client.post("/api/v1/models/v13/promote", {}, format="json")
    assert "reason" in assert_error(missing, 400, "validation_error")["details"]["fields"]
    wrong = client.post(
        "/api/v1/models/v13/promote",
        {"reason": "x", "segment": "department:Electronics"},
        format="json",
    )
    assert "segment" in assert_error(wrong, 400, "validation_error")["details"]["fields"]


def test_promoting_an_archived_version_is_a_conflict_listing_what_it_allows(manager):
    ModelVersionFactory(version_number=9, status=Status.ARCHIVED)

    response = client_for(manager).post(
        "/api/v1/models/v9/promote", {"reason": "try"}, format="json"
    )

    error = assert_error(response, 409, "illegal_transition")
    assert error["details"] == {"status": "archived", "allowed_transitions": ["restore"]}


def test_unknown_version_is_404_and_name_selects_another_model(manager, arena):
    client = client_for(manager)
    assert_error(client.post("/api/v1/models/v99/promote", {"reason": "x"}), 404, "not_found")
    other = client.post("/api/v1/models/v13/promote?name=other", {"reason": "x"})
    assert_error(other, 404, "not_found")


def test_rollback_restores_the_previous_champion(manager, arena):
    client = client_for(manager)
    client.post("/api/v1/models/v13/promote", {"reason": "better"}, format="json")

    response = client.post(
        "/api/v1/models/v13/rollback", {"reason": "stockouts in Electronics"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["version"] == "v12"
    assert response.json()["status"] == "champion"
    arena["challenger"].refresh_from_db()
    assert arena["challenger"].status == Status.ARCHIVED


def test_rollback_without_a_former_champion_is_a_conflict(manager, arena):
    response = client_for(manager).post(
        "/api/v1/models/v12/rollback", {"reason": "x"}, format="json"
    )
    assert_error(response, 409, "illegal_transition")


def test_rollback_needs_the_rollback_role_and_a_reason(scientist, manager, arena):
    assert_error(client_for(scientist).post("/api/v1/models/v12/rollback", {"reason": "x"}), 403)
    assert_error(client_for(manager).post("/api/v1/models/v12/rollback", {}), 400)


def test_scientist_queues_a_retrain_and_polls_its_log(
    scientist, django_capture_on_commit_callbacks
):
    client = client_for(scientist)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(
            "/api/v1/models/retrain",
            {"algorithm": "seasonal_naive", "window_days": 180, "reason": "new season"},
            format="json",
        )

    assert response.status_code == 202, response.content
    log = response.json()
    assert log["status"] == "queued" and log["trigger"] == "manual"
    assert log["requested_by"] == "sami"
    assert log["trigger_metadata"]["reason"] == "new season"
    assert len(queued) == 1  # the task is sent once the request's transaction commits
    polled = client.get(response["Location"])
    assert polled.status_code == 200 and polled.json()["id"] == log["id"]
    again = client.post("/api/v1/models/retrain", {}, format="json")
    assert again.json()["id"] == log["id"]  # a pending retrain absorbs the repeat


def test_viewer_may_not_retrain(viewer):
    assert_error(client_for(viewer).post("/api/v1/models/retrain", {}, format="json"), 403)
    assert not ModelRetrainingLog.objects.exists()


def test_retrain_validates_algorithm_and_segment(scientist):
    response = client_for(scientist).post(
        "/api/v1/models/retrain",
        {"algorithm": "prophet", "segment": "shelf:1", "window_days": 3},
        format="json",
    )
    fields = assert_error(response, 400, "validation_error")["details"]["fields"]
    assert {"algorithm", "segment", "window_days"} <= set(fields)


def test_retraining_log_lists_newest_first_and_filters(viewer):
    ModelRetrainingLog.objects.create(trigger="scheduled", status="succeeded", outcome="promoted")
    ModelRetrainingLog.objects.create(trigger="drift_detected", status="failed", error="boom")
    client = client_for(viewer)

    body = client.get("/api/v1/models/retraining-log").json()
    assert [log["trigger"] for log in body["results"]] == ["drift_detected", "scheduled"]
    failed = client.get("/api/v1/models/retraining-log?status=failed").json()
    assert [log["error"] for log in failed["results"]] == ["boom"]
    assert_error(client.get("/api/v1/models/retraining-log?trigger=whim"), 400)
    assert_error(client.get("/api/v1/models/retraining-log/999999"), 404)
