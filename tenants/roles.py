"""The roles every tenant has, as Django groups, and the permissions each one carries."""

VIEWER = "viewer"
DATA_SCIENTIST = "data_scientist"
ML_MANAGER = "ml_manager"
ROLES = (VIEWER, DATA_SCIENTIST, ML_MANAGER)

# Apps whose models every role may view in the tenant admin and API.
VIEWABLE_APPS = ("forecasting", "mlops", "experiments", "alerts")

# Permissions a role adds to those of the roles before it ("app_label.codename").
# A data scientist can do what a viewer can; a manager what a data scientist can.
ROLE_PERMISSIONS: dict[str, list[str]] = {
    VIEWER: [],
    DATA_SCIENTIST: [
        "forecasting.add_sale",  # import sales
        "forecasting.add_plannedpromotion",  # import the promotion calendar
        "mlops.request_retrain",
        "experiments.propose_modelexperiment",
        "experiments.run_modelexperiment",  # start, shadow-test, complete
    ],
    ML_MANAGER: [
        "mlops.promote_modelversion",
        "mlops.reject_modelversion",
        "mlops.rollback_modelversion",
        "mlops.manage_schedules",
        "experiments.approve_modelexperiment",  # approve or reject
        "alerts.act_on_mlalert",
    ],
}


def permissions_for(role: str) -> list[str]:
    """Return the "app_label.codename" permissions of a role, inherited ones included."""
    granted: list[str] = []
    for each in ROLES:
        granted.extend(ROLE_PERMISSIONS[each])
        if each == role:
            return granted
    raise ValueError(f"Unknown role {role!r}; roles are {', '.join(ROLES)}")


# -- who acts, and whether they may ----------------------------------------------------------

SYSTEM_ACTOR = "system"  # how automatic moves are recorded in every audit log


def actor_label(actor) -> str:
    """The name an audit log records: the user's, or `system` for automatic moves."""
    return actor.get_username() if actor is not None else SYSTEM_ACTOR


def role_needed(permission: str) -> str:
    """The first (least privileged) role that holds `permission`."""
    for role in ROLES:
        if permission in permissions_for(role):
            return role
    return "administrator"


def has_permission(actor, permission: str) -> bool:
    return actor is not None and actor.is_active and actor.has_perm(permission)


def require_permission(actor, permission: str, *, action: str, system_may: bool = False) -> None:
    """Raise PermissionDenied, naming the role needed, unless `actor` holds `permission`
    (or is the system, `actor=None`, where `system_may` allows automatic moves)."""
    from django.core.exceptions import PermissionDenied

    if (actor is None and system_may) or has_permission(actor, permission):
        return
    who = actor.get_username() if actor is not None else "Nobody"
    raise PermissionDenied(
        f"{who} may not {action}: that needs the {role_needed(permission)} role ({permission})."
    )
