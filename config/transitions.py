"""One way to move any lifecycle (django-fsm-2): check the move is allowed now, check the
actor's permission, apply the transition to the locked, fresh row, save it, write its audit row.

Model versions, experiments, alerts, drift incidents and rollout plans all move through
`apply_transition`; each passes its own description (for refusals) and audit writer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django.core.exceptions import PermissionDenied
from django.db import models
from django_fsm import TransitionNotAllowed, can_proceed, has_transition_perm

M = TypeVar("M", bound=models.Model)
# Writes the audit row of a move: called with the state it left, after the row is saved.
Audit = Callable[[str], Any]


def locked(instance: M) -> M:
    """The row of `instance`, fresh from the database and locked until the transaction ends."""
    return type(instance).objects.select_for_update().get(pk=instance.pk)


# A transition declared with custom={"system": True} is a move only the system makes (a drift
# incident's alert closing itself, training that failed): refusals and the API do not offer it.
SYSTEM = {"system": True}


def is_system_move(transition: Any) -> bool:
    return bool((getattr(transition, "custom", None) or {}).get("system"))


def allowed_moves(instance: models.Model, *, hidden: Iterable[str] = ()) -> list[str]:
    """The transitions a person may make from the row's current state (less `hidden` ones)."""
    hidden = set(hidden)
    return sorted(
        {
            each.name
            for each in instance.get_available_status_transitions()
            if each.name not in hidden and not is_system_move(each)
        }
    )


def ensure_can(
    instance: models.Model,
    method_name: str,
    *,
    action: str,
    describe: str,
    hidden: Iterable[str] = (),
) -> None:
    """Raise TransitionNotAllowed, listing the moves allowed now, unless `method_name` may run
    from the row's current state."""
    method = getattr(instance, method_name)
    if can_proceed(method):
        return
    status = instance.status
    allowed = ", ".join(allowed_moves(instance, hidden=hidden)) or "nothing (it is final)"
    raise TransitionNotAllowed(
        f"Cannot {action} {describe} while it is {status}; allowed from {status}: {allowed}.",
        object=instance,
        method=method,
    )


def apply_transition(
    instance: M,
    method_name: str,
    *,
    actor: Any,
    action: str,
    describe: str,
    audit: Audit | None = None,
    check_permission: bool = False,
    hidden: Iterable[str] = (),
    **fields: Any,
) -> M:
    """Run transition `method_name` on `instance` (a locked, fresh row), set `fields`, save, and
    write the audit row; returns the instance. With `check_permission`, the transition's own
    permission is required of `actor` (None is the system, which may). Raises
    TransitionNotAllowed or PermissionDenied; a refusal changes nothing."""
    ensure_can(instance, method_name, action=action, describe=describe, hidden=hidden)
    method = getattr(instance, method_name)
    if check_permission and actor is not None and not has_transition_perm(method, actor):
        raise PermissionDenied(f"{actor} may not {action} {describe}.")
    from_status = instance.status
    method()
    for name, value in fields.items():
        setattr(instance, name, value)
    instance.save()
    if audit is not None:
        audit(from_status)
    return instance


def sync(caller: M, fresh: M) -> M:
    """Bring the caller's instance up to date with what a service saved on its fresh copy."""
    if caller is not fresh:
        caller.refresh_from_db()
    return fresh
