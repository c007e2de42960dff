"""Tenant admin of walk-forwards spread over workers: how far each run is, and how it ended."""

from django.contrib import admin
from django.db.models import Count
from django.utils.html import format_html

from config.admin_sites import tenant_admin
from mlops.admin.history import OUTCOME_COLOURS, ReadOnlyAdmin, version_link
from mlops.models import WalkForwardRun


@admin.register(WalkForwardRun, site=tenant_admin)
class WalkForwardRunAdmin(ReadOnlyAdmin):
    list_display = ["started_at", "version", "status_label", "progress", "end", "finished_at"]
    list_filter = ["status", "model_version__segment"]
    search_fields = ["model_version__version", "model_version__name"]
    list_select_related = ["model_version"]
    fields = [
        "version",
        "status_label",
        "progress",
        "requested_at",
        "started_at",
        "finished_at",
        "end",
        "error",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(windows_done=Count("windows"))

    @admin.display(description="Version", ordering="model_version__version_number")
    def version(self, run):
        return version_link(run.model_version)

    @admin.display(description="Status", ordering="status")
    def status_label(self, run):
        colour = OUTCOME_COLOURS.get(run.status, "#5f6b7a")
        return format_html(
            '<strong style="color: {}">{}</strong>', colour, run.get_status_display()
        )

    @admin.display(description="Progress")
    def progress(self, run):
        return f"{run.windows_done} of {run.n_windows} windows"
