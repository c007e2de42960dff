"""Tenant admin of experiments: the list, each experiment's log, and its next steps as actions."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.html import format_html
from django_fsm import TransitionNotAllowed

from config.admin_sites import tenant_admin
from experiments import services
from experiments.models import ExperimentEvent, ModelExperiment


class ExperimentEventInline(admin.TabularInline):
    model = ExperimentEvent
    fields = ["created_at", "from_status", "to_status", "actor_label", "note"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["created_at", "pk"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ModelExperiment, site=tenant_admin)
class ModelExperimentAdmin(admin.ModelAdmin):
    """Read-only pages: every change goes through the workflow's services (the actions)."""

    list_display = [
        "name",
        "experiment_type",
        "status",
        "success_metric",
        "expected_improvement_pct",
        "decision",
        "proposed_by",
        "created_at",
    ]
    list_filter = ["status", "experiment_type", "decision"]
    search_fields = ["name", "hypothesis"]
    inlines = [ExperimentEventInline]
    actions = ["approve_selected", "start_selected", "start_shadow_testing_selected"]
    fields = [
        "name",
        "hypothesis",
        "experiment_type",
        "model_name",
        "configuration",
        "success_metric",
        "expected_improvement_pct",
        "status",
        "proposed_by",
        "approved_by",
        "review_note",
        "versions",
        "results_shown",
        "decision",
        "decision_rationale",
        "completed_by",
        "created_at",
        "approved_at",
        "rejected_at",
        "started_at",
        "shadow_started_at",
        "completed_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Model versions")
    def versions(self, obj: ModelExperiment) -> str:
        return ", ".join(str(version) for version in obj.model_versions.all()) or "—"

    @admin.display(description="Results")
    def results_shown(self, obj: ModelExperiment) -> str:
        if not obj.results:
            return "—"
        return format_html("<pre>{}</pre>", json.dumps(obj.results, indent=2))

    def _each(self, request, queryset, step, done: str) -> None:
        for experiment in queryset:
            try:
                step(experiment)
            except (PermissionDenied, TransitionNotAllowed) as error:
                self.message_user(request, str(error), messages.ERROR)
            except ValidationError as error:
                self.message_user(request, "; ".join(error.messages), messages.ERROR)
            else:
                self.message_user(request, f"{experiment.name}: {done}.", messages.SUCCESS)

    @admin.action(description="Approve the selected experiments")
    def approve_selected(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda experiment: services.approve_experiment(
                experiment=experiment, actor=request.user
            ),
            "approved",
        )

    @admin.action(description="Start the selected experiments (train their versions)")
    def start_selected(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda experiment: services.queue_start_experiment(
                experiment=experiment, actor=request.user
            ),
            "training queued",
        )

    @admin.action(description="Start shadow testing of the selected experiments")
    def start_shadow_testing_selected(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda experiment: services.start_shadow_testing(
                experiment=experiment, actor=request.user
            ),
            "shadow testing started",
        )
