"""Approving and dismissing drift / promotion alerts acts on their challenger, or refuses whole."""

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django_fsm import TransitionNotAllowed

from alerts.models import MLAlert
from alerts.services import act_on_alert, raise_alert
from mlops.models import ModelTransition, ModelVersion
from tests.mlops.factories import ModelVersionFactory, UserFactory


def promotion_pending(challenger):
    return raise_alert(
        alert_type="promotion_pending",
        severity="warning",
        title=f"Promotion pending: demand_forecast {challenger.version} awaits review",
        message="Drift retrain produced a challenger.",
        metadata={"challenger_mae": 11.2, "champion_mae": 12.8},
        model_version=challenger,
    )


def statuses(*versions):
    return [ModelVersion.objects.get(pk=v.pk).status for v in versions]


def test_manager_approving_promotion_pending_makes_the_challenger_champion(
    manager, champion, challenger
):
    alert = promotion_pending(challenger)

    act_on_alert(alert=alert, user=manager, action="approve", note="Backtests look right")

    assert statuses(champion, challenger) == ["archived", "champion"]
    alert.refresh_from_db()
    assert alert.status == MLAlert.Status.ACTIONED
    assert alert.actioned_by == manager
    assert alert.actioned_at is not None
    assert alert.action_taken == "approve"
    assert alert.action_note == "Backtests look right"
    assert alert.metadata["decision"] == {"version": "v13", "result": "promoted"}
    promotion = ModelTransition.objects.get(model_version=challenger, to_status="champion")
    assert promotion.actor == manager
    assert f"ML alert #{alert.pk}" in promotion.reason
    assert "Backtests look right" in promotion.reason


@pytest.mark.parametrize("role", ["viewer", "data_scientist"])
def test_approving_without_the_role_is_refused_and_changes_nothing(role, champion, challenger):
    user = UserFactory(username=f"just_a_{role}", role=role)
    alert = promotion_pending(challenger)

    with pytest.raises(PermissionDenied):
        act_on_alert(alert=alert, user=user, action="approve")

    assert statuses(champion, challenger) == ["champion", "challenger"]
    alert.refresh_from_db()
    assert (alert.status, alert.actioned_by, alert.actioned_at, alert.action_taken) == (
        "unread",
        None,
        None,
        "",
    )
    assert not ModelTransition.objects.exists()


def test_a_registry_refusal_rolls_the_alert_back_too(manager, champion):
    archived = ModelVersionFactory(version_number=14, status="archived")
    alert = promotion_pending(archived)

    with pytest.raises(TransitionNotAllowed):
        act_on_alert(alert=alert, user=manager, action="approve")

    alert.refresh_from_db()
    assert alert.status == "unread" and alert.actioned_at is None
    assert statuses(champion, archived) == ["champion", "archived"]


def test_manager_without_promote_permission_cannot_approve_a_promotion(champion, challenger):
    # May act on alerts, but not promote models: the registry's own check refuses.
    from django.contrib.auth.models import Permission

    user = UserFactory(username="alerts_only")
    user.user_permissions.add(Permission.objects.get(codename="act_on_mlalert"))
    alert = promotion_pending(challenger)

    with pytest.raises(PermissionDenied):
        act_on_alert(alert=alert, user=user, action="approve")

    assert statuses(champion, challenger) == ["champion", "challenger"]
    alert.refresh_from_db()
    assert alert.status == "unread"


def test_dismissing_archives_the_challenger_when_the_tenant_says_so(
    monkeypatch, manager, champion, challenger
):
    monkeypatch.setattr(connection.tenant, "dismissed_challenger", "archive")
    alert = promotion_pending(challenger)

    act_on_alert(alert=alert, user=manager, action="dismiss", note="Not convinced")

    assert statuses(champion, challenger) == ["champion", "archived"]
    alert.refresh_from_db()
    assert (alert.status, alert.actioned_by, alert.action_taken) == (
        "dismissed",
        manager,
        "dismiss",
    )
    assert alert.metadata["decision"]["result"] == "archived"


def test_dismissing_keeps_the_challenger_by_default(manager, champion, challenger):
    assert connection.tenant.dismissed_challenger == "keep"
    alert = promotion_pending(challenger)

    act_on_alert(alert=alert, user=manager, action="dismiss")

    assert statuses(champion, challenger) == ["champion", "challenger"]
    alert.refresh_from_db()
    assert alert.status == "dismissed"
    assert alert.metadata["decision"]["result"] == "kept"


def test_approving_a_drift_alert_about_the_champion_acknowledges_it(manager, champion):
    alert = raise_alert(
        alert_type="drift_detected",
        severity="critical",
        title="Drift detected on demand_forecast v12 (MAE +45%)",
        message="Emergency retrain queued.",
        model_version=champion,
    )

    act_on_alert(alert=alert, user=manager, action="approve")

    assert statuses(champion) == ["champion"]
    alert.refresh_from_db()
    assert alert.status == "actioned"
    assert alert.metadata["decision"]["result"] == "already_champion"


def test_approving_other_alert_types_just_closes_them(manager, champion, challenger):
    alert = raise_alert(
        alert_type="backtest_degradation",
        severity="warning",
        title="Backtest worse",
        message="m",
        model_version=challenger,
    )

    act_on_alert(alert=alert, user=manager, action="approve")

    assert statuses(champion, challenger) == ["champion", "challenger"]
    alert.refresh_from_db()
    assert alert.status == "actioned"
    assert "decision" not in alert.metadata
