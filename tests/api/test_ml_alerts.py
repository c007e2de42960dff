"""ML alerts API: list with filters, stats, detail, mark read, approve/dismiss by role."""

from mlops.models import ModelVersion
from tests.api.clients import assert_error, client_for
from tests.api.factories import ModelVersionFactory, make_alert


def test_unread_filter_lists_only_unread_alerts_in_the_spec_shape(viewer, manager):
    unread = make_alert(dedup_key="drift:a")
    read = make_alert(dedup_key="drift:b", severity="warning")
    client_for(manager).patch(f"/api/v1/ml-alerts/{read.pk}/read")

    response = client_for(viewer).get("/api/v1/ml-alerts?status=unread")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    alert = body["results"][0]
    assert alert["ml_alert_id"] == unread.pk
    assert alert["alert_type"] == "drift_detected"
    assert alert["severity"] == "critical"
    assert alert["status"] == "unread"
    assert alert["metadata"] == {"baseline_mae": 12.8, "recent_mae": 18.5, "drift_pct": 45.2}
    assert alert["action_url"].startswith("/admin/alerts/mlalert/")
    assert {"title", "message", "requires_action", "created_at"} <= set(alert)


def test_alert_list_filters_by_severity_and_type_and_paginates(viewer):
    make_alert(dedup_key="one", severity="critical")
    make_alert(dedup_key="two", severity="warning", alert_type="backtest_degradation")
    make_alert(dedup_key="three", severity="info", alert_type="experiment_complete")
    client = client_for(viewer)

    warning = client.get("/api/v1/ml-alerts", {"severity": "warning"}).json()
    assert [a["alert_type"] for a in warning["results"]] == ["backtest_degradation"]
    typed = client.get("/api/v1/ml-alerts", {"alert_type": "experiment_complete"}).json()
    assert [a["severity"] for a in typed["results"]] == ["info"]
    paged = client.get("/api/v1/ml-alerts", {"page_size": 2}).json()
    assert paged["count"] == 3 and len(paged["results"]) == 2 and paged["next"]


def test_alert_list_rejects_an_unknown_status_with_a_field_error(viewer):
    error = assert_error(
        client_for(viewer).get("/api/v1/ml-alerts?status=maybe"), 400, "validation_error"
    )
    assert "status" in error["details"]["fields"]


def test_alert_stats_count_unread_by_severity(viewer):
    make_alert(dedup_key="a", severity="critical")
    make_alert(dedup_key="b", severity="warning")
    make_alert(dedup_key="c", severity="warning")

    response = client_for(viewer).get("/api/v1/ml-alerts/stats")

    assert response.status_code == 200
    stats = response.json()
    assert stats["unread"] == {"info": 0, "warning": 2, "critical": 1, "total": 3}
    assert stats["by_status"]["unread"] == 3


def test_alert_detail_and_unknown_alert(viewer):
    alert = make_alert()
    client = client_for(viewer)
    assert client.get(f"/api/v1/ml-alerts/{alert.pk}").json()["title"] == alert.title
    assert_error(client.get(f"/api/v1/ml-alerts/{alert.pk + 1000}"), 404, "not_found")


def test_mark_read_records_who_read_it(viewer):
    alert = make_alert()

    response = client_for(viewer).patch(f"/api/v1/ml-alerts/{alert.pk}/read")

    assert response.status_code == 200
    assert response.json()["status"] == "read"
    assert response.json()["read_by"] == "vera"


def test_manager_approving_a_drift_alert_promotes_its_challenger(manager):
    champion = ModelVersionFactory(version_number=12, status="champion")
    challenger = ModelVersionFactory(version_number=13, status="challenger", parent=champion)
    alert = make_alert(model_version=challenger)

    response = client_for(manager).patch(
        f"/api/v1/ml-alerts/{alert.pk}/action",
        {"action": "approve", "note": "Reviewed the backtest"},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "actioned"
    assert response.json()["metadata"]["decision"]["result"] == "promoted"
    challenger.refresh_from_db()
    assert challenger.status == ModelVersion.Status.CHAMPION


def test_viewer_may_not_act_on_an_alert(viewer):
    alert = make_alert()
    response = client_for(viewer).patch(
        f"/api/v1/ml-alerts/{alert.pk}/action", {"action": "dismiss"}, format="json"
    )
    assert_error(response, 403, "permission_denied")
    alert.refresh_from_db()
    assert alert.status == "unread"


def test_action_must_be_approve_or_dismiss(manager):
    alert = make_alert()
    response = client_for(manager).patch(
        f"/api/v1/ml-alerts/{alert.pk}/action", {"action": "delete"}, format="json"
    )
    assert "action" in assert_error(response, 400, "validation_error")["details"]["fields"]


def test_acting_on_a_closed_alert_is_a_conflict_listing_no_allowed_moves(manager):
    alert = make_alert()
    client = client_for(manager)
    client.patch(f"/api/v1/ml-alerts/{alert.pk}/action", {"action": "dismiss"}, format="json")

    response = client.patch(
        f"/api/v1/ml-alerts/{alert.pk}/action", {"action": "approve"}, format="json"
    )

    error = assert_error(response, 409, "illegal_transition")
    assert error["details"] == {"status": "dismissed", "allowed_transitions": []}


def test_open_alert_conflict_lists_the_moves_the_alert_allows():
    from config.api_errors import available_transitions

    assert available_transitions(make_alert()) == ["approve", "dismiss", "mark_read"]


def test_a_user_without_a_role_may_not_read_alerts(no_role):
    assert_error(client_for(no_role).get("/api/v1/ml-alerts"), 403)


def test_anonymous_request_is_401_with_a_token_challenge():
    response = client_for(None).get("/api/v1/ml-alerts")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"
