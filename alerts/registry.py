"""What acting on an alert of a given type does, registered by the app that owns that type.

`alerts` is the lower layer: it raises, lists, delivers and closes alerts, and never imports the
apps above it. An app that raises alerts whose approval must change something of its own (the
registry promotes a challenger when a drift or promotion alert is approved) registers handlers
here from its `AppConfig.ready()`; `act_on_alert` calls them inside its transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alerts.models import MLAlert

# handler(alert=..., user=..., note=...) -> what it did (stored as the alert's "decision").
Handler = Callable[..., dict[str, Any] | None]


@dataclass(frozen=True)
class AlertTypeActions:
    """The owner's handlers for one alert type; each is optional."""

    approve: Handler | None = None
    dismiss: Handler | None = None
    # Whether approving does something beyond closing the alert (else it is offered as
    # "acknowledge"): e.g. a drift alert is approvable once a challenger has evidence.
    approvable: Callable[[MLAlert], bool] | None = None
    # Extra context for the alert's admin page (the decision it is about, and what each button
    # does: "approve_label", "acknowledge_label", "dismiss_label"), or None.
    admin_context: Callable[[MLAlert], dict[str, Any] | None] | None = None
    # Where a person reviews what the alert is about: (url, link text), or None.
    review: Callable[[MLAlert], tuple[str, str] | None] | None = None


_registry: dict[str, AlertTypeActions] = {}


def register(alert_type: str, actions: AlertTypeActions) -> None:
    """Register (or replace, on a repeated `ready()`) what acting on `alert_type` does."""
    _registry[str(alert_type)] = actions


def actions_for(alert_type: str) -> AlertTypeActions:
    """The registered actions of an alert type (none: acting only closes the alert)."""
    return _registry.get(str(alert_type), AlertTypeActions())


def can_approve(alert: MLAlert) -> bool:
    """Whether approving this alert would do what it proposes (not just close it)."""
    actions = actions_for(alert.alert_type)
    if actions.approve is None:
        return False
    return actions.approvable(alert) if actions.approvable else True
