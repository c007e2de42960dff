"""Tenant admin of what the jobs left behind: retrains and backtest results, read-only, filterable."""

import datetime as dt
from collections.abc import Callable

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from config.admin_sites import tenant_admin
from config.admin_tables import pairs_table
from mlops.admin.review import format_metric
from mlops.models import BacktestResult, DriftIncident, ModelRetrainingLog
from mlops.services.rootcause import REFERENCE_WEEKS, root_cause_summary

OUTCOME_COLOURS = {
    "succeeded": "#1a7f37",
    "failed": "#b00020",
    "running": "#1f5fa8",
    "queued": "#5f6b7a",
}


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by jobs: people filter and read them, never add, edit or delete."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def version_link(version):
    if version is None:
        return "—"
    url = reverse("admin:mlops_modelversion_change", args=[version.pk])
    return format_html('<a href="{}">{}</a>', url, version.version)


@admin.register(ModelRetrainingLog, site=tenant_admin)
class ModelRetrainingLogAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "name",
        "segment",
        "trigger",
        "status_label",
        "outcome",
        "resulting",
        "algorithm",
        "rows",
        "data_start",
        "data_end",
        "attempts",
        "finished_at",
    ]
    list_filter = ["status", "trigger", "outcome", "segment", "algorithm"]
    search_fields = ["name", "segment", "error"]
    date_hierarchy = "created_at"
    list_select_related = ["resulting_version", "requested_by"]
    fieldsets = [
        (None, {"fields": ["name", "segment", "trigger", "status", "outcome", "resulting"]}),
        (
            "Data and recipe",
            {
                "fields": [
                    "rows",
                    "data_start",
                    "data_end",
                    "window_days",
                    "algorithm",
                    "recipe",
                    "artifact_sha256",
                ]
            },
        ),
        (
            "Run",
            {"fields": ["requested_by", "attempts", "created_at", "started_at", "finished_at"]},
        ),
        ("Why it ran, and what went wrong", {"fields": ["why", "error"]}),
    ]
    readonly_fields = ["resulting", "recipe", "why"]

    @admin.display(description="Hyperparameters")
    def recipe(self, log):
        return pairs_table(log.hyperparameters)

    @admin.display(description="Trigger details")
    def why(self, log):
        return pairs_table(log.trigger_metadata)

    @admin.display(description="Status", ordering="status")
    def status_label(self, log):
        return format_html(
            '<span class="arena-pill" style="background: {}">{}</span>',
            OUTCOME_COLOURS.get(log.status, "#5f6b7a"),
            log.get_status_display(),
        )

    @admin.display(description="Version")
    def resulting(self, log):
        return version_link(log.resulting_version)


@admin.register(BacktestResult, site=tenant_admin)
class BacktestResultAdmin(ReadOnlyAdmin):
    list_display = [
        "window_end",
        "version",
        "segment",
        "kind",
        "window_start",
        "mae_shown",
        "mape_shown",
        "wape_shown",
        "bias_shown",
        "interval_shown",
        "n_points",
        "n_missing",
    ]
    list_filter = [
        "kind",
        "model_version__status",
        "model_version__segment",
        "model_version__algorithm",
        "window_end",
    ]
    search_fields = ["model_version__version", "model_version__name"]
    date_hierarchy = "window_end"
    list_select_related = ["model_version"]
    ordering = ["-window_end", "model_version__name", "model_version__segment"]

    @admin.display(description="Version", ordering="model_version__version_number")
    def version(self, row):
        return version_link(row.model_version)

    @admin.display(description="Segment", ordering="model_version__segment")
    def segment(self, row):
        return row.model_version.segment

    @admin.display(description="MAE", ordering="mae")
    def mae_shown(self, row):
        return format_metric("mae", row.mae)

    @admin.display(description="MAPE", ordering="mape")
    def mape_shown(self, row):
        return format_metric("mape", row.mape)

    @admin.display(description="WAPE", ordering="wape")
    def wape_shown(self, row):
        return format_metric("wape", row.wape)

    @admin.display(description="Bias", ordering="bias")
    def bias_shown(self, row):
        return format_metric("bias", row.bias)

    @admin.display(description="Interval hit rate", ordering="interval_coverage")
    def interval_shown(self, row):
        return format_metric("interval_coverage", row.interval_coverage)


@admin.register(DriftIncident, site=tenant_admin)
class DriftIncidentAdmin(ReadOnlyAdmin):
    """Drift incidents: one per drift of a champion, open until a new champion, a dismissal or
    recovery resolves it."""

    list_display = [
        "opened_on",
        "name",
        "segment",
        "status",
        "change_date",
        "rules_fired",
        "champion_link",
        "challenger_link",
        "alert_link",
        "resolution",
        "resolved_on",
    ]
    list_filter = ["status", "resolution", "segment"]
    search_fields = ["name", "segment", "resolution_note"]
    date_hierarchy = "opened_on"
    list_select_related = ["champion", "challenger", "alert", "resolved_by"]
    change_form_template = "admin/mlops/driftincident/change_form.html"
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "name",
                    "segment",
                    "status",
                    "champion_link",
                    "change_date",
                    "opened_on",
                    "last_checked_on",
                    "rules_fired",
                ]
            },
        ),
        ("Answer", {"fields": ["challenger_link", "alert_link", "retrain_log"]}),
        ("The numbers when it opened", {"fields": ["detection_table"]}),
        ("The numbers of the last check", {"fields": ["latest_table", "quiet_days"]}),
        ("Where it sits", {"fields": ["root_cause_tables"]}),
        (
            "Resolution",
            {
                "fields": [
                    "resolution",
                    "resolved_on",
                    "resolved_by",
                    "resolution_note",
                    "snoozed_until",
                ]
            },
        ),
    ]
    readonly_fields = [
        "champion_link",
        "challenger_link",
        "alert_link",
        "rules_fired",
        "detection_table",
        "latest_table",
        "root_cause_tables",
    ]

    @admin.display(description="Rules fired")
    def rules_fired(self, incident):
        return ", ".join(incident.rules) or "—"

    @admin.display(description="Champion", ordering="champion")
    def champion_link(self, incident):
        return version_link(incident.champion)

    @admin.display(description="Challenger trained for it")
    def challenger_link(self, incident):
        return version_link(incident.challenger)

    @admin.display(description="Alert")
    def alert_link(self, incident):
        if incident.alert is None:
            return "—"
        url = reverse("admin:alerts_mlalert_change", args=[incident.alert.pk])
        return format_html('<a href="{}">{}</a>', url, incident.alert.title)

    @admin.display(description="Detection")
    def detection_table(self, incident):
        return pairs_table(incident.detection)

    @admin.display(description="Latest check")
    def latest_table(self, incident):
        return pairs_table(incident.latest)

    @admin.display(description="Root cause")
    def root_cause_tables(self, incident):
        from mlops.admin.series import explorer_url

        # Each series shown from the reference weeks its root cause compared up to the last check.
        start = incident.change_date - dt.timedelta(weeks=REFERENCE_WEEKS)
        end = max(incident.last_checked_on, incident.change_date)
        return root_cause_html(
            incident.root_cause,
            series_url=lambda store, product: explorer_url(
                store=store, product=product, start=start, end=end
            ),
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The incident's drift page: its charts, links and alert decision above the numbers
        recorded with it."""
        from mlops.admin.drift_page import drift_page

        incident = self.get_object(request, object_id)
        if incident is not None and self.has_view_permission(request, incident):
            extra_context = {**(extra_context or {}), "drift": drift_page(incident, request)}
        return super().change_view(request, object_id, form_url, extra_context)


def _rows_table(caption: str, columns: list[tuple[str, str]], rows: list[dict]) -> str:
    head = format_html_join("", "<th>{}</th>", ((label,) for _, label in columns))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        (
            (format_html_join("", "<td>{}</td>", ((row.get(key, "—"),) for key, _ in columns)),)
            for row in rows
        ),
    )
    return format_html(
        '<table class="arena-rows"><caption>{}</caption><tr>{}</tr>{}</table>', caption, head, body
    )


def root_cause_html(found: dict, *, series_url: Callable[[str, str], str] | None = None) -> str:
    """The root cause as tables: shares by department and store, the series that moved most
    (each linked to `series_url(store, product)` when given), and the inputs' PSI."""
    if not found:
        return "—"
    kind = found.get("leads", "error")
    part = found.get(kind) or {}
    share = [("key", "Where"), ("series", "Series"), ("change", "Change"), ("share_pct", "Share %")]
    series = [
        ("store", "Store"),
        ("product", "Product"),
        ("department", "Department"),
        ("change", "Change"),
        ("share_pct", "Share %"),
        ("spreads", "Spreads"),
    ]
    top = part.get("top_series", [])
    if series_url is not None:
        series.append(("explore", "Explore"))
        top = [
            {
                **row,
                "explore": format_html(
                    '<a class="explore-series" href="{}">{} / {}</a>',
                    series_url(row.get("store", ""), row.get("product", "")),
                    row.get("store", ""),
                    row.get("product", ""),
                ),
            }
            for row in top
        ]
    shift = found.get("input_shift") or {}
    return format_html(
        "<p>{}</p>{}{}{}{}",
        root_cause_summary(found),
        _rows_table(f"{kind} by department", share, part.get("by_department", [])),
        _rows_table(f"{kind} by store (top)", share, part.get("by_store", [])),
        _rows_table("Series that moved most for their size", series, top),
        _rows_table(
            f"Input shift (PSI; shifted above {shift.get('threshold')})",
            [("input", "Input"), ("psi", "PSI"), ("shifted", "Shifted")],
            shift.get("inputs", []),
        ),
    )
