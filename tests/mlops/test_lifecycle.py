"""Each status change of a model version, who may make it, and the record it leaves."""

import pytest
from django.core.exceptions import PermissionDenied
from django_fsm import TransitionNotAllowed

from mlops.models import ModelTransition, ModelVersion
from mlops.services import (
    ChampionChanged,
    NothingToRollBack,
    archive_version,
    configure_routing,
    make_challenger,
    promote_to_champion,
    reject_model_version,
    rollback_champion,
    start_shadow,
)
from mlops.services.promotion import PromotionDecision
from tests.mlops.factories import ModelVersionFactory

Status = ModelVersion.Status


def status_of(version: ModelVersion) -> str:
    return ModelVersion.objects.get(pk=version.pk).status


def last_move(version: ModelVersion) -> ModelTransition:
    return version.transitions.order_by("-created_at", "-pk").first()


def test_manager_promotes_candidate_and_the_move_is_recorded_with_who_and_why(manager):
    candidate = ModelVersionFactory()

    promote_to_champion(
        version=candidate, actor=manager, reason="Reviewed backtests", evidence={"mae": 1.0}
    )

    assert status_of(candidate) == Status.CHAMPION
    assert candidate.promoted_at is not None
    move = last_move(candidate)
    assert (move.from_status, move.to_status) == ("candidate", "champion")
    assert move.actor == manager and move.actor_label == "manager"
    assert move.reason == "Reviewed backtests"
    assert move.evidence == {"mae": 1.0}


def test_promotion_retires_the_old_champion_and_records_both_moves(manager):
    old = ModelVersionFactory(status=Status.CHAMPION)
    new = ModelVersionFactory(status=Status.CHALLENGER)

    promote_to_champion(version=new, actor=manager, reason="Better in shadow")

    assert status_of(old) == Status.ARCHIVED
    assert status_of(new) == Status.CHAMPION
    retired = last_move(old)
    assert (retired.from_status, retired.to_status) == ("champion", "archived")
    assert retired.actor_label == "manager"
    assert f"Replaced by {new.version}" in retired.reason
    assert ModelVersion.objects.get(pk=old.pk).archived_at is not None


def test_system_promotion_is_recorded_as_system():
    candidate = ModelVersionFactory()

    promote_to_champion(version=candidate, actor=None, reason="Cleared the gate")

    move = last_move(candidate)
    assert move.actor is None and move.actor_label == "system"


def test_viewer_may_not_promote_reject_or_roll_back(viewer):
    champion = ModelVersionFactory(status=Status.CHAMPION)
    candidate = ModelVersionFactory()

    with pytest.raises(PermissionDenied):
        promote_to_champion(version=candidate, actor=viewer, reason="I like it")
    with pytest.raises(PermissionDenied):
        reject_model_version(version=candidate, actor=viewer, reason="I do not")
    with pytest.raises(PermissionDenied):
        rollback_champion(name="demand_forecast", segment="global", actor=viewer, reason="?")
    with pytest.raises(PermissionDenied):
        start_shadow(version=candidate, actor=viewer, reason="?")
    with pytest.raises(PermissionDenied):
        make_challenger(version=candidate, actor=viewer, reason="?")

    assert status_of(candidate) == Status.CANDIDATE
    assert status_of(champion) == Status.CHAMPION
    assert not ModelTransition.objects.exists()


def test_data_scientist_may_shadow_test_but_not_promote(scientist):
    candidate = ModelVersionFactory()

    start_shadow(version=candidate, actor=scientist, reason="Compare with the champion")
    assert status_of(candidate) == Status.SHADOW
    assert ModelVersion.objects.get(pk=candidate.pk).routing_mode == "shadow"

    with pytest.raises(PermissionDenied):
        promote_to_champion(version=candidate, actor=scientist, reason="Looks good")


def test_candidate_to_shadow_to_challenger_to_champion(manager, scientist):
    version = ModelVersionFactory()

    start_shadow(version=version, actor=scientist, reason="shadow")
    make_challenger(version=version, actor=scientist, reason="challenge")
    promote_to_champion(version=version, actor=manager, reason="promote")

    moves = list(version.transitions.order_by("created_at", "pk"))
    assert [(m.from_status, m.to_status) for m in moves] == [
        ("candidate", "shadow"),
        ("shadow", "challenger"),
        ("challenger", "champion"),
    ]
    assert [m.actor_label for m in moves] == ["scientist", "scientist", "manager"]


def test_reject_archives_a_challenger_with_the_reason(manager):
    challenger = ModelVersionFactory(status=Status.CHALLENGER)

    reject_model_version(version=challenger, actor=manager, reason="Worse on Electronics")

    assert status_of(challenger) == Status.ARCHIVED
    move = last_move(challenger)
    assert (move.from_status, move.to_status, move.reason) == (
        "challenger",
        "archived",
        "Worse on Electronics",
    )


@pytest.mark.parametrize(
    ("status", "service"),
    [
        (Status.CHAMPION, "promote"),
        (Status.ARCHIVED, "promote"),
        (Status.CHAMPION, "reject"),
        (Status.ARCHIVED, "reject"),
        (Status.SHADOW, "shadow"),
        (Status.CHALLENGER, "shadow"),
        (Status.CHAMPION, "challenger"),
        (Status.ARCHIVED, "challenger"),
    ],
)
def test_illegal_moves_are_refused_with_the_allowed_ones_listed(manager, status, service):
    version = ModelVersionFactory(status=status)
    call = {
        "promote": lambda: promote_to_champion(version=version, actor=manager, reason="x"),
        "reject": lambda: reject_model_version(version=version, actor=manager, reason="x"),
        "shadow": lambda: start_shadow(version=version, actor=manager, reason="x"),
        "challenger": lambda: make_challenger(version=version, actor=manager, reason="x"),
    }[service]

    with pytest.raises(TransitionNotAllowed) as refused:
        call()

    assert f"while it is {status}" in str(refused.value)
    assert "allowed from" in str(refused.value)
    assert status_of(version) == status
    assert not ModelTransition.objects.exists()


def test_archived_champion_message_names_its_possible_moves(manager):
    champion = ModelVersionFactory(status=Status.CHAMPION)

    with pytest.raises(TransitionNotAllowed, match="allowed from champion: retire"):
        archive_version(version=champion, actor=None, reason="x")


def test_rollback_restores_previous_champion_in_one_call_and_records_who_and_why(manager):
    first = ModelVersionFactory()
    second = ModelVersionFactory()
    promote_to_champion(version=first, actor=None, reason="first")
    promote_to_champion(version=second, actor=None, reason="second")

    restored = rollback_champion(
        name="demand_forecast", segment="global", actor=manager, reason="Stockouts in Berlin"
    )

    assert restored.pk == first.pk
    assert status_of(first) == Status.CHAMPION
    assert status_of(second) == Status.ARCHIVED
    back, out = last_move(first), last_move(second)
    assert (back.from_status, back.to_status) == ("archived", "champion")
    assert (out.from_status, out.to_status) == ("champion", "archived")
    for move in (back, out):
        assert move.actor == manager
        assert "Stockouts in Berlin" in move.reason
        assert move.evidence["rollback"] == {
            "from_version": second.version,
            "to_version": first.version,
        }


def test_rollback_without_a_former_champion_is_refused(manager):
    ModelVersionFactory(status=Status.CHAMPION)

    with pytest.raises(NothingToRollBack):
        rollback_champion(name="demand_forecast", segment="global", actor=manager, reason="x")


def test_rollback_stays_within_its_segment(manager):
    global_old = ModelVersionFactory()
    promote_to_champion(version=global_old, actor=None, reason="g1")
    promote_to_champion(version=ModelVersionFactory(), actor=None, reason="g2")
    electronics = ModelVersionFactory(segment="department:Electronics", status=Status.CHAMPION)

    with pytest.raises(NothingToRollBack):
        rollback_champion(
            name="demand_forecast", segment="department:Electronics", actor=manager, reason="x"
        )
    assert status_of(electronics) == Status.CHAMPION
    assert status_of(global_old) == Status.ARCHIVED


def test_challengers_of_different_workflows_wait_side_by_side(scientist):
    # A drift retrain's challenger and an experiment's version under test: making one
    # challenger never archives the other (each workflow decides its own).
    drift = ModelVersionFactory(status=Status.CHALLENGER, trigger="drift_detected")
    experiment = ModelVersionFactory(trigger="experiment")

    make_challenger(version=experiment, actor=scientist, reason="shadow test")

    assert status_of(drift) == Status.CHALLENGER
    assert status_of(experiment) == Status.CHALLENGER
    assert not drift.transitions.exists()


def test_canary_needs_a_manager_and_its_routing_change_is_logged(scientist, manager):
    challenger = ModelVersionFactory()
    with pytest.raises(PermissionDenied):
        make_challenger(
            version=challenger,
            actor=scientist,
            reason="x",
            routing_mode="canary",
            canary_weight=0.1,
        )
    make_challenger(version=challenger, actor=scientist, reason="shadow first")

    configure_routing(
        version=challenger, routing_mode="canary", canary_weight=0.2, actor=manager, reason="10%"
    )

    fresh = ModelVersion.objects.get(pk=challenger.pk)
    assert (fresh.routing_mode, fresh.canary_weight) == ("canary", 0.2)
    move = last_move(challenger)
    assert move.from_status == move.to_status == "challenger"
    assert move.evidence["routing"] == {"routing_mode": "canary", "canary_weight": 0.2}


def _decision_against(champion_id, *, judged_against=None):
    return PromotionDecision(
        champion={"id": judged_against} if judged_against else {},
        promote=True,
        reason="better",
        checks={},
        candidate_metrics={},
        champion_metrics={},
        improvement={},
        test={},
        thresholds={},
        n_points=0,
        n_series=0,
        replaces_id=champion_id,
    )


def test_decision_made_against_a_replaced_champion_is_refused():
    judged_against = ModelVersionFactory(status=Status.ARCHIVED)
    ModelVersionFactory(status=Status.CHAMPION)
    candidate = ModelVersionFactory()

    with pytest.raises(ChampionChanged):
        promote_to_champion(
            version=candidate, actor=None, reason="x", decision=_decision_against(judged_against.pk)
        )
    assert status_of(candidate) == Status.CANDIDATE


def test_segment_decision_made_against_a_replaced_global_champion_is_refused():
    judged_against = ModelVersionFactory(status=Status.ARCHIVED)
    ModelVersionFactory(status=Status.CHAMPION)  # the global champion now
    candidate = ModelVersionFactory(segment="department:Electronics")

    with pytest.raises(ChampionChanged):
        promote_to_champion(
            version=candidate,
            actor=None,
            reason="x",
            decision=_decision_against(None, judged_against=judged_against.pk),
        )
    assert status_of(candidate) == Status.CANDIDATE


def test_transition_log_is_append_only(manager):
    candidate = ModelVersionFactory()
    promote_to_champion(version=candidate, actor=manager, reason="ok")
    move = last_move(candidate)

    move.reason = "rewritten"
    with pytest.raises(Exception, match="append-only"):
        move.save()
    with pytest.raises(Exception, match="append-only"):
        move.delete()
