"""The experiment admin: its list, the propose form, each page with its next steps as buttons
and the decision form; every step is a service."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django_fsm import TransitionNotAllowed, has_transition_perm

from config.admin_sites import tenant_admin
from experiments import services
from experiments.admin.forms import DecisionForm, ProposeForm
from experiments.admin.results import page_results, results_view
from experiments.models import ExperimentEvent, ModelExperiment
from mlops.admin.review import format_pct

# The buttons of an experiment's page: (key, FSM transition, label, needs a note).
STEPS = (
    ("approve", "approve", "Approve", False),
    ("reject", "reject", "Reject", True),
    ("start", "start", "Start training", False),
    ("shadow", "start_shadow_testing", "Start shadow testing", False),
    ("complete", "complete", "Complete with a decision…", False),
)
STEPS_BY_KEY = {step[0]: step for step in STEPS}


def next_steps(experiment: ModelExperiment, user) -> list[dict[str, Any]]:
    """The steps this user may take now: the FSM allows them from the experiment's status and
    the user holds the transition's permission; and a start that stopped half-way (its worker
    was lost) may be started again, to resume."""
    steps = [
        {"key": key, "label": label, "needs_note": needs_note}
        for key, method, label, needs_note in STEPS
        if has_transition_perm(getattr(experiment, method), user)
    ]
    if user.has_perm(services.RUN_PERMISSION) and services.start_interrupted(experiment):
        steps.insert(0, {"key": "start", "label": "Resume training", "needs_note": False})
    return steps


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
        "configuration_shown",
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

    change_form_template = "admin/experiments/modelexperiment/change_form.html"

    def has_add_permission(self, request):
        # "Add" is the propose form, which goes through services.propose_experiment.
        return request.user.has_perm(services.PROPOSE_PERMISSION)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # every change is a step of the workflow (the buttons)

    def add_view(self, request, form_url="", extra_context=None):
        """The propose form."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ProposeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                experiment = services.propose_experiment(
                    actor=request.user,
                    name=data["name"],
                    hypothesis=data["hypothesis"],
                    experiment_type=data["experiment_type"],
                    configuration=form.configuration(),
                    success_metric=data["success_metric"],
                    expected_improvement_pct=data["expected_improvement_pct"],
                    model_name=data["model_name"],
                )
            except ValidationError as error:
                for field, problems in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, problems)
            else:
                self.message_user(
                    request, f"Proposed “{experiment.name}”; it waits for a manager's approval."
                )
                return HttpResponseRedirect(self._page(experiment))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Propose an experiment",
            "form": form,
        }
        return TemplateResponse(request, "admin/experiments/modelexperiment/propose.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        experiment = self.get_object(request, object_id)
        extra: dict[str, Any] = {}
        if experiment is not None:
            results, state = page_results(experiment)
            steps = next_steps(experiment, request.user)
            extra = {
                "steps": steps,
                "takes_note": any(step["key"] in ("approve", "reject") for step in steps),
                "results": results_view(experiment, results),
                "results_state": state,
            }
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def get_urls(self):
        return [
            path(
                "<int:object_id>/step/<str:step>/",
                self.admin_site.admin_view(self.step_view),
                name="experiments_modelexperiment_step",
            ),
            *super().get_urls(),
        ]

    @staticmethod
    def _page(experiment: ModelExperiment) -> str:
        return reverse("admin:experiments_modelexperiment_change", args=[experiment.pk])

    def step_view(self, request, object_id, step):
        """POST one step of the workflow (complete: GET shows the decision form). A user
        without the step's permission gets 403, whatever they send."""
        if step not in STEPS_BY_KEY:
            raise PermissionDenied
        experiment = get_object_or_404(ModelExperiment, pk=object_id)
        _, method, label, _ = STEPS_BY_KEY[step]
        field = ModelExperiment._meta.get_field("status")
        permission = next(
            t.permission for t in field.get_all_transitions(ModelExperiment) if t.name == method
        )
        if not request.user.has_perm(permission):
            raise PermissionDenied
        if step == "complete":
            return self._complete(request, experiment)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        note = request.POST.get("note", "")
        actions = {
            "approve": lambda: services.approve_experiment(
                experiment=experiment, actor=request.user, note=note
            ),
            "reject": lambda: services.reject_experiment(
                experiment=experiment, actor=request.user, note=note
            ),
            "start": lambda: services.queue_start_experiment(
                experiment=experiment, actor=request.user
            ),
            "shadow": lambda: services.start_shadow_testing(
                experiment=experiment, actor=request.user
            ),
        }
        done = {
            "approve": "approved",
            "reject": "rejected",
            "start": "training queued; its versions appear here when trained",
            "shadow": "shadow testing started",
        }
        try:
            actions[step]()
        except TransitionNotAllowed as error:
            messages.error(request, f"Nothing was changed: {error}")
        except ValidationError as error:
            messages.error(request, "Nothing was changed: " + "; ".join(error.messages))
        else:
            messages.success(request, f"{experiment.name}: {done[step]}.")
        return HttpResponseRedirect(self._page(experiment))

    def _complete(self, request, experiment: ModelExperiment):
        form = DecisionForm(request.POST or None, experiment=experiment)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                services.complete_experiment(
                    experiment=experiment,
                    actor=request.user,
                    decision=data["decision"],
                    rationale=data["rationale"],
                    adopted_versions=[int(pk) for pk in data["adopted_versions"]] or None,
                    override_reason=data["override_reason"],
                )
            except TransitionNotAllowed as error:
                messages.error(request, f"Nothing was changed: {error}")
                return HttpResponseRedirect(self._page(experiment))
            except ValidationError as error:
                if hasattr(error, "error_dict"):
                    for field, problems in error.message_dict.items():
                        form.add_error(field if field in form.fields else None, problems)
                else:
                    form.add_error(None, error.messages)
            except PermissionDenied as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, f"{experiment.name}: completed ({data['decision']}).")
                return HttpResponseRedirect(self._page(experiment))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Complete “{experiment.name}”",
            "original": experiment,
            "form": form,
        }
        results, context["results_state"] = page_results(experiment)
        context["results"] = results_view(experiment, results)
        return TemplateResponse(request, "admin/experiments/modelexperiment/complete.html", context)

    @admin.display(description="Model versions")
    def versions(self, obj: ModelExperiment) -> str:
        return ", ".join(str(version) for version in obj.model_versions.all()) or "—"

    @admin.display(description="Results")
    def results_shown(self, obj: ModelExperiment) -> str:
        if not obj.results:
            return "—"
        metric = obj.success_metric
        label = ModelExperiment.Metric(metric).label
        lines = [
            (
                segment,
                (result.get("version") or {}).get("version", ""),
                label,
                format_pct((result.get("improvement_pct") or {}).get(metric)),
                result.get("source", ""),
            )
            for segment, result in (obj.results.get("segments") or {}).items()
        ]
        return format_html_join(mark_safe("<br>"), "{} {}: {} {} ({})", lines)

    @admin.display(description="Configuration")
    def configuration_shown(self, obj: ModelExperiment) -> str:
        pairs = []
        for key, value in (obj.configuration or {}).items():
            if isinstance(value, dict):
                value = ", ".join(f"{name} = {item}" for name, item in value.items())
            elif isinstance(value, list):
                value = ", ".join(str(item) for item in value)
            pairs.append((key.replace("_", " "), value))
        return format_html_join("", "<div><strong>{}</strong>: {}</div>", pairs) or "—"

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
