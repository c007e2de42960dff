"""The tenant admin's home: models side by side, unread alerts, recent retrains, next runs."""

from __future__ import annotations

from typing import Any

from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from alerts.selectors import alert_stats
from mlops.admin.review import format_metric
from mlops.admin.versions import STATUS_COLOURS
from mlops.health_selectors import model_health
from mlops.models import ModelRetrainingLog, ModelTransition, ModelVersion
from mlops.schedules import job_for, next_run_at, tenant_schedules

RECENT_RETRAINS = 6
HEALTH_WORDS = {
    "healthy": ("Healthy", "#1a7f37"),
    "degraded": ("Degraded", "#a15c00"),
    "drifting": ("Drifting", "#b00020"),
    "unknown": ("No recent results", "#5f6b7a"),
    "shadow_testing": ("Shadow testing", "#6f42c1"),
    "canary": ("Canary", "#1f5fa8"),
    "waiting_for_review": ("Waiting for review", "#a15c00"),
}
TREND_WORDS = {
    "improving": ("↘", "improving"),
    "degrading": ("↗", "degrading"),
    "stable": ("→", "stable"),
}
SEVERITIES = (
    ("critical", "Critical", "#b00020"),
    ("warning", "Warning", "#a15c00"),
    ("info", "Info", "#1f5fa8"),
)


def _review(version_id: int) -> str:
    return reverse("admin:mlops_modelversion_change", args=[version_id])


def _badge(status: str) -> dict[str, str]:
    word, colour = HEALTH_WORDS.get(status, (status.replace("_", " ").capitalize(), "#5f6b7a"))
    return {"word": word, "colour": colour}


def _champion_card(entry: dict[str, Any]) -> dict[str, Any]:
    arrow, word = TREND_WORDS.get(entry["trend"] or "", ("", "not enough results yet"))
    incident = entry["incident"]
    return {
        **entry,
        "url": _review(entry["id"]),
        "incident_url": reverse("admin:mlops_driftincident_change", args=[incident["id"]])
        if incident
        else "",
        "badge": _badge(entry["status"]),
        "mae_7d_text": format_metric("mae", entry["mae_7d"]),
        "mae_30d_text": format_metric("mae", entry["mae_30d"]),
        "baseline_text": format_metric("mae", entry["baseline_mae"]),
        "incident_recent_text": format_metric("mae", incident["recent_mae"]) if incident else "",
        "incident_baseline_text": format_metric("mae", incident["baseline_mae"])
        if incident
        else "",
        "trend_arrow": arrow,
        "trend_word": word,
        "since": entry["promoted_at"],
    }


def _challenger_card(entry: dict[str, Any]) -> dict[str, Any]:
    became = (
        ModelTransition.objects.filter(model_version_id=entry["id"], to_status="challenger")
        .order_by("-created_at", "-pk")
        .values_list("created_at", flat=True)
        .first()
    )
    confidence = entry["confidence"]
    return {
        **entry,
        "url": _review(entry["id"]),
        "badge": _badge(entry["status"]),
        "mae_7d_text": format_metric("mae", entry["mae_7d"]),
        "confidence_text": f"{confidence:.3f}" if isinstance(confidence, int | float) else "—",
        "since": became,
    }


def model_cards() -> list[dict[str, Any]]:
    """One card per model name and segment with a champion or a challenger."""
    names = ModelVersion.objects.order_by("name").values_list("name", flat=True).distinct()
    cards = []
    for name in names:
        for entry in model_health(name=name):
            cards.append(
                {
                    "name": entry["name"],
                    "segment": entry["segment"],
                    "champion": _champion_card(entry["champion"]) if entry["champion"] else None,
                    "challenger": _challenger_card(entry["challenger"])
                    if entry["challenger"]
                    else None,
                }
            )
    return cards


def unread_alerts() -> dict[str, Any]:
    unread = alert_stats()["unread"]
    inbox = reverse("admin:alerts_mlalert_changelist")
    return {
        "total": unread["total"],
        "inbox_url": f"{inbox}?status__exact=unread",
        "by_severity": [
            {
                "key": key,
                "word": word,
                "colour": colour,
                "count": unread.get(key, 0),
                "url": f"{inbox}?status__exact=unread&severity__exact={key}",
            }
            for key, word, colour in SEVERITIES
        ],
    }


def recent_retrains() -> list[dict[str, Any]]:
    logs = ModelRetrainingLog.objects.select_related("resulting_version").order_by(
        "-created_at", "-pk"
    )[:RECENT_RETRAINS]
    return [
        {
            "log": log,
            "url": reverse("admin:mlops_modelretraininglog_change", args=[log.pk]),
            "version": log.resulting_version,
            "version_url": _review(log.resulting_version_id) if log.resulting_version_id else "",
            "status_colour": {"succeeded": "#1a7f37", "failed": "#b00020"}.get(
                log.status, "#5f6b7a"
            ),
        }
        for log in logs
    ]


def next_runs(tenant) -> list[dict[str, Any]]:
    """The tenant's jobs, soonest first; disabled ones last."""
    now = timezone.now()
    runs = []
    for task in tenant_schedules(tenant=tenant):
        job = job_for(task)
        runs.append(
            {
                "task": task,
                "job": task.name.split("@", 1)[0].replace("_", " ").capitalize(),
                "description": job.description if job else task.description,
                "next_run": next_run_at(task, now=now),
                "time_zone": str(task.crontab.timezone) if task.crontab else "UTC",
                "url": reverse("admin:mlops_tenantschedule_change", args=[task.pk]),
            }
        )
    return sorted(runs, key=lambda run: (run["next_run"] is None, run["next_run"] or now))


EXPERIMENT_STAGES = (
    ("proposed", "Waiting for approval"),
    ("approved", "Approved, not started"),
    ("in_progress", "Training"),
    ("shadow_testing", "Shadow testing"),
)


def open_experiments() -> list[dict[str, Any]]:
    """How many experiments wait at each open stage, with a link to the filtered list."""
    from experiments.models import ModelExperiment

    counts = dict(ModelExperiment.objects.values_list("status").annotate(n=Count("pk")).order_by())
    changelist = reverse("admin:experiments_modelexperiment_changelist")
    return [
        {
            "word": word,
            "count": counts.get(status, 0),
            "url": f"{changelist}?status__exact={status}",
        }
        for status, word in EXPERIMENT_STAGES
    ]


def home_context(request) -> dict[str, Any]:
    """What the home page shows, limited to what the user may view."""
    user = request.user
    context: dict[str, Any] = {"status_colours": STATUS_COLOURS}
    if user.has_perm("mlops.view_modelversion"):
        context["model_cards"] = model_cards()
    if user.has_perm("alerts.view_mlalert"):
        context["unread"] = unread_alerts()
    if user.has_perm("experiments.view_modelexperiment"):
        context["experiments"] = open_experiments()
    if user.has_perm("mlops.view_modelretraininglog"):
        context["retrains"] = recent_retrains()
    if user.has_perm("mlops.view_tenantschedule") or user.has_perm("mlops.manage_schedules"):
        context["runs"] = next_runs(request.tenant)
    return context
