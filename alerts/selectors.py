"""Reads of the alert inbox: lists with filters, unread counts, and who is emailed."""

from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet

from alerts.models import REQUIRES_ACTION, MLAlert
from tenants.roles import ML_MANAGER

OPEN_STATUSES = (MLAlert.Status.UNREAD, MLAlert.Status.READ)
CLOSED_STATUSES = (MLAlert.Status.ACTIONED, MLAlert.Status.DISMISSED, MLAlert.Status.RESOLVED)
SEVERITY_RANK = {
    MLAlert.Severity.INFO: 0,
    MLAlert.Severity.WARNING: 1,
    MLAlert.Severity.CRITICAL: 2,
}


def severities_up_to(severity: str) -> list[str]:
    """The severities at or below `severity` (a threshold of one of these lets it through)."""
    return [s for s, rank in SEVERITY_RANK.items() if rank <= SEVERITY_RANK[severity]]


def alert_list(
    *,
    status: str | list[str] | None = None,
    severity: str | list[str] | None = None,
    alert_type: str | list[str] | None = None,
    open_only: bool = False,
) -> QuerySet[MLAlert]:
    """Alerts, newest first, filtered by status, severity and type (each one value or a list)."""
    queryset = MLAlert.objects.select_related("model_version", "experiment")
    for field, value in (("status", status), ("severity", severity), ("alert_type", alert_type)):
        if value:
            values = [value] if isinstance(value, str) else list(value)
            queryset = queryset.filter(**{f"{field}__in": values})
    if open_only:
        queryset = queryset.filter(status__in=OPEN_STATUSES)
    return queryset


def alert_stats() -> dict[str, dict[str, int]]:
    """Counts by severity for unread and open alerts, and by status: the inbox summary."""
    counts = MLAlert.objects.aggregate(
        **{
            f"unread_{s}": Count("pk", filter=Q(status=MLAlert.Status.UNREAD, severity=s))
            for s in SEVERITY_RANK
        },
        **{
            f"open_{s}": Count("pk", filter=Q(status__in=OPEN_STATUSES, severity=s))
            for s in SEVERITY_RANK
        },
        **{f"status_{s}": Count("pk", filter=Q(status=s)) for s in MLAlert.Status.values},
        open_action_required=Count(
            "pk",
            filter=Q(
                status__in=OPEN_STATUSES,
                alert_type__in=[t for t, need in REQUIRES_ACTION.items() if need == "yes"],
            ),
        ),
    )
    unread = {s: counts[f"unread_{s}"] for s in SEVERITY_RANK}
    unread["total"] = sum(unread.values())
    open_ = {s: counts[f"open_{s}"] for s in SEVERITY_RANK}
    open_["total"] = sum(open_.values())
    open_["action_required"] = counts["open_action_required"]
    return {
        "unread": unread,
        "open": open_,
        "by_status": {s: counts[f"status_{s}"] for s in MLAlert.Status.values},
    }


def unread_alert_count() -> int:
    """The number on the admin's unread badge."""
    return MLAlert.objects.filter(status=MLAlert.Status.UNREAD).count()


def email_recipients(*, severity: str) -> list[str]:
    """Addresses to email an alert of this severity to, sorted and without duplicates.

    A user's NotificationPreference decides for that user; without one, members of the
    ml_manager group receive warning and critical alerts. Inactive users and users without an
    email address receive nothing.
    """
    allowed = severities_up_to(severity)
    opted_in = Q(alert_preference__email_enabled=True, alert_preference__min_severity__in=allowed)
    by_default = Q(alert_preference__isnull=True, groups__name=ML_MANAGER)
    if SEVERITY_RANK[severity] < SEVERITY_RANK[MLAlert.Severity.WARNING]:
        by_default = Q(pk__in=[])
    emails = (
        get_user_model()
        .objects.filter(is_active=True)
        .exclude(email="")
        .filter(opted_in | by_default)
        .values_list("email", flat=True)
        .distinct()
    )
    return sorted({email.strip() for email in emails})
