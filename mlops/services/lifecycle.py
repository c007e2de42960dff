"""Status changes of model versions: every one is permission-checked, locked and recorded."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone
from django_fsm import TransitionNotAllowed

from config.transitions import apply_transition, ensure_can, sync
from mlops.health_cache import forget_model_health
from mlops.models import GLOBAL_SEGMENT, ModelTransition, ModelVersion
from mlops.selectors import rollback_target
from tenants import roles
from tenants.roles import actor_label

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from mlops.services.promotion import PromotionDecision

Status = ModelVersion.Status
RoutingMode = ModelVersion.RoutingMode

# Shadow and challenger moves have no permission on the FSM (they serve nobody); people need the
# data scientist's right to train models. Sending traffic to a canary is a serving decision.
MOVE_PERMISSION = "mlops.request_retrain"
SERVE_PERMISSION = "mlops.promote_modelversion"


class ChampionChanged(TransitionNotAllowed):
    """The champion changed after the promotion decision was made against it."""


class NothingToRollBack(TransitionNotAllowed):
    """The name/segment has no former champion to restore."""


def require_permission(actor: AbstractBaseUser | None, permission: str, *, action: str) -> None:
    """Raise PermissionDenied, naming the role needed, unless `actor` is the system (None) or
    holds `permission`."""
    roles.require_permission(actor, permission, action=action, system_may=True)


def _fsm_permission(method_name: str) -> str | None:
    field = ModelVersion._meta.get_field("status")
    for each in field.get_all_transitions(ModelVersion):
        if each.name == method_name and each.permission:
            return each.permission
    return None


def record_event(
    version: ModelVersion,
    *,
    from_status: str,
    actor: AbstractBaseUser | None,
    reason: str,
    evidence: dict[str, Any] | None = None,
) -> ModelTransition:
    """Write one row of the version's audit log (a status change, or a change of how it takes
    traffic or is tested when `from_status` is its current status)."""
    return ModelTransition.objects.create(
        model_version=version,
        from_status=from_status,
        to_status=version.status,
        actor=actor,
        actor_label=actor_label(actor),
        reason=reason,
        evidence=evidence or {},
    )


def _describe(version: ModelVersion) -> str:
    return f"{version.name} {version.version}"


def _ensure_can(version: ModelVersion, method_name: str, *, action: str) -> None:
    """Raise TransitionNotAllowed (listing the moves allowed now) if the FSM refuses the move."""
    ensure_can(version, method_name, action=action, describe=_describe(version))


def _apply(
    version: ModelVersion,
    method_name: str,
    *,
    actor: AbstractBaseUser | None,
    reason: str,
    evidence: dict[str, Any] | None = None,
    **fields: Any,
) -> ModelVersion:
    """Run one FSM transition on a locked, fresh `version`, save it and log it."""
    moved = apply_transition(
        version,
        method_name,
        actor=actor,
        action=method_name.replace("_", " "),
        describe=_describe(version),
        audit=lambda from_status: record_event(
            version, from_status=from_status, actor=actor, reason=reason, evidence=evidence
        ),
        **fields,
    )
    forget_model_health()
    return moved


def lock_group(*, name: str, segment: str) -> dict[int, ModelVersion]:
    """Lock every version of a name/segment in one ordered query (pk order, so that concurrent
    callers queue instead of deadlocking) and return them, fresh, by pk."""
    rows = (
        ModelVersion.objects.select_for_update().filter(name=name, segment=segment).order_by("pk")
    )
    return {row.pk: row for row in rows}


def _lock_one(version: ModelVersion) -> ModelVersion:
    return lock_group(name=version.name, segment=version.segment)[version.pk]


def _check_still_valid(
    target: ModelVersion, decision: PromotionDecision, *, current: ModelVersion | None
) -> None:
    """Raise ChampionChanged unless the champions the decision was made against still hold:
    the group's own champion, and (for a segment judged against the global champion) that one."""
    current_id = current.pk if current else None
    judged_against = (decision.champion or {}).get("id")
    if current is None and judged_against is not None and target.segment != GLOBAL_SEGMENT:
        serving = (
            ModelVersion.objects.filter(
                name=target.name, segment=GLOBAL_SEGMENT, status=Status.CHAMPION
            )
            .values_list("pk", flat=True)
            .first()
        )
    else:
        serving = current_id
    if current_id != decision.replaces_id or (
        judged_against is not None and serving != judged_against
    ):
        raise ChampionChanged(
            f"{target.version} was judged against champion id {judged_against or decision.replaces_id}"
            f", but the champion serving its series is now id {serving}; evaluate it again.",
            object=target,
            method=target.promote,
        )


@transaction.atomic
def promote_to_champion(
    *,
    version: ModelVersion,
    actor: AbstractBaseUser | None,
    reason: str,
    evidence: dict[str, Any] | None = None,
    decision: PromotionDecision | None = None,
    expected_champion_id: int | None = None,
) -> ModelVersion:
    """Make `version` the champion of its name/segment, retiring the old one; returns it.

    Raises PermissionDenied, TransitionNotAllowed, or ChampionChanged when `decision` was made
    against a champion that has since been replaced (the evidence no longer holds), or when the
    champion is no longer `expected_champion_id`.
    """
    require_permission(actor, _fsm_permission("promote"), action="promote a model version")
    group = lock_group(name=version.name, segment=version.segment)
    target = group.get(version.pk)
    if target is None:
        raise ModelVersion.DoesNotExist(f"Model version {version.pk} no longer exists.")
    _ensure_can(target, "promote", action="promote")
    champions = [v for v in group.values() if v.status == Status.CHAMPION]
    current_id = champions[0].pk if champions else None
    if expected_champion_id is not None and current_id != expected_champion_id:
        raise ChampionChanged(
            f"{target.version} was judged against champion id {expected_champion_id}, but the "
            f"champion is now id {current_id}; evaluate it again.",
            object=target,
            method=target.promote,
        )
    if decision is not None:
        _check_still_valid(target, decision, current=champions[0] if champions else None)
        evidence = {**decision.as_evidence(), **(evidence or {})}
    now = timezone.now()
    for old in champions:
        _apply(
            old,
            "retire",
            actor=actor,
            reason=f"Replaced by {target.version}: {reason}",
            evidence=evidence,
            archived_at=now,
        )
    _apply(target, "promote", actor=actor, reason=reason, evidence=evidence, promoted_at=now)
    _after_new_champion(target)
    return sync(version, target)


def _after_new_champion(champion: ModelVersion) -> None:
    """A new champion ends the drift incident of the one it replaced."""
    from mlops.services.incidents import on_new_champion

    on_new_champion(version=champion)


@transaction.atomic
def rollback_champion(
    *, name: str, segment: str, actor: AbstractBaseUser | None, reason: str
) -> ModelVersion:
    """Restore the last retired champion of name/segment and archive the current one; returns
    the restored champion. Raises PermissionDenied, or NothingToRollBack."""
    require_permission(actor, _fsm_permission("restore"), action="roll back a champion")
    group = lock_group(name=name, segment=segment)
    target = rollback_target(name=name, segment=segment)
    current = next((v for v in group.values() if v.status == Status.CHAMPION), None)
    previous = group.get(target.pk) if target else None
    if previous is None or previous.status != Status.ARCHIVED:
        raise NothingToRollBack(f"{name} [{segment}] has no former champion to restore.")
    now = timezone.now()
    evidence = {
        "rollback": {
            "from_version": current.version if current else None,
            "to_version": previous.version,
        }
    }
    if current is not None:
        _apply(
            current,
            "retire",
            actor=actor,
            reason=f"Rolled back to {previous.version}: {reason}",
            evidence=evidence,
            archived_at=now,
        )
    _apply(
        previous,
        "restore",
        actor=actor,
        reason=f"Rollback: {reason}",
        evidence=evidence,
        promoted_at=now,
        archived_at=None,
    )
    _after_new_champion(previous)
    return previous


@transaction.atomic
def reject_model_version(
    *,
    version: ModelVersion,
    actor: AbstractBaseUser | None,
    reason: str,
    evidence: dict[str, Any] | None = None,
) -> ModelVersion:
    """Archive a candidate, shadow or challenger; returns it. Raises PermissionDenied or
    TransitionNotAllowed (a champion leaves only by being replaced or rolled back)."""
    require_permission(actor, _fsm_permission("reject"), action="reject a model version")
    target = _lock_one(version)
    _ensure_can(target, "reject", action="archive")
    _apply(
        target,
        "reject",
        actor=actor,
        reason=reason,
        evidence=evidence,
        archived_at=timezone.now(),
        canary_weight=0.0,
    )
    return sync(version, target)


def archive_version(
    *,
    version: ModelVersion,
    actor: AbstractBaseUser | None,
    reason: str,
    evidence: dict[str, Any] | None = None,
) -> ModelVersion:
    """Archive a version that lost (the system's word for a rejection); returns it. Raises as
    reject_model_version."""
    return reject_model_version(version=version, actor=actor, reason=reason, evidence=evidence)


@transaction.atomic
def start_shadow(
    *, version: ModelVersion, actor: AbstractBaseUser | None, reason: str
) -> ModelVersion:
    """Put a candidate in shadow mode (it forecasts beside the champion, never served); returns
    it. Raises PermissionDenied or TransitionNotAllowed."""
    require_permission(actor, MOVE_PERMISSION, action="start shadow testing")
    target = _lock_one(version)
    _ensure_can(target, "start_shadow", action="shadow-test")
    _apply(target, "start_shadow", actor=actor, reason=reason)
    return sync(version, target)


def _check_routing(mode: str, canary_weight: float) -> None:
    if mode not in RoutingMode.values:
        raise ValueError(f"routing mode {mode!r} is not one of {', '.join(RoutingMode.values)}")
    if not 0.0 <= canary_weight <= 1.0:
        raise ValueError("canary_weight must be between 0 and 1")
    if mode != RoutingMode.CANARY and canary_weight:
        raise ValueError("canary_weight applies to canary routing only")


@transaction.atomic
def make_challenger(
    *,
    version: ModelVersion,
    actor: AbstractBaseUser | None,
    reason: str,
    routing_mode: str = RoutingMode.SHADOW,
    canary_weight: float = 0.0,
    evidence: dict[str, Any] | None = None,
) -> ModelVersion:
    """Make a candidate or shadow a challenger of its name/segment; returns it. Challengers wait
    side by side: one workflow's challenger (a drift retrain, an experiment) never archives
    another's. Raises PermissionDenied, TransitionNotAllowed or ValueError (bad routing)."""
    _check_routing(routing_mode, canary_weight)
    require_permission(actor, MOVE_PERMISSION, action="make a challenger")
    if routing_mode == RoutingMode.CANARY:
        require_permission(actor, SERVE_PERMISSION, action="send canary traffic")
    target = _lock_one(version)
    _ensure_can(target, "make_challenger", action="make challenger")
    routing = {"routing_mode": routing_mode, "canary_weight": canary_weight}
    _apply(
        target,
        "make_challenger",
        actor=actor,
        reason=reason,
        evidence={**(evidence or {}), "routing": routing},
        **routing,
    )
    return sync(version, target)


@transaction.atomic
def configure_routing(
    *,
    version: ModelVersion,
    routing_mode: str,
    canary_weight: float = 0.0,
    actor: AbstractBaseUser | None,
    reason: str,
) -> ModelVersion:
    """Change how a challenger takes traffic (none, shadow, canary with a weight); the change is
    logged beside the status changes. Returns it. Raises PermissionDenied, TransitionNotAllowed
    (only a challenger's routing can change) or ValueError."""
    _check_routing(routing_mode, canary_weight)
    require_permission(actor, SERVE_PERMISSION, action="change routing")
    target = _lock_one(version)
    if target.status != Status.CHALLENGER:
        raise TransitionNotAllowed(
            f"Only a challenger's routing can change; {target.version} is {target.status}.",
            object=target,
        )
    target.routing_mode = routing_mode
    target.canary_weight = canary_weight
    target.save(update_fields=["routing_mode", "canary_weight", "updated_at"])
    forget_model_health()
    routing = {"routing_mode": routing_mode, "canary_weight": canary_weight}
    record_event(
        target,
        from_status=target.status,
        actor=actor,
        reason=reason,
        evidence={"routing": routing},
    )
    return sync(version, target)
