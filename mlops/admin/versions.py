"""Tenant admin of model versions: the list, the review page, and promote / reject / roll back."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django_fsm import TransitionNotAllowed, has_transition_perm

from config.admin_sites import tenant_admin
from mlops.admin.importance import importance_section
from mlops.admin.review import (
    backtest_section,
    comparison_champion,
    decision_section,
    format_metric,
    history_section,
    incident_rows,
    lineage_section,
    metric_rows,
)
from mlops.admin.rollouts import canary_section
from mlops.models import ModelVersion
from mlops.selectors import rollback_target
from mlops.services import promote_to_champion, reject_model_version, rollback_champion

Status = ModelVersion.Status
STATUS_COLOURS = {
    Status.CANDIDATE: "#5f6b7a",
    Status.SHADOW: "#6f42c1",
    Status.CHALLENGER: "#a15c00",
    Status.CHAMPION: "#1a7f37",
    Status.ARCHIVED: "#8c959f",
}


def status_badge(version: ModelVersion) -> str:
    return format_html(
        '<span class="arena-pill" style="background: {}">{}</span>',
        STATUS_COLOURS.get(version.status, "#5f6b7a"),
        version.get_status_display(),
    )


def review_url(version: ModelVersion) -> str:
    return reverse("admin:mlops_modelversion_change", args=[version.pk])


# The button's key and the FSM transition it makes (a rollback restores the former champion).
TRANSITION_METHODS = {"promote": "promote", "reject": "reject", "rollback": "restore"}


def transition_permission(method_name: str) -> str:
    """The permission the FSM declares for a ModelVersion transition."""
    field = ModelVersion._meta.get_field("status")
    for each in field.get_all_transitions(ModelVersion):
        if each.name == method_name:
            return each.permission
    raise ValueError(f"ModelVersion has no transition {method_name!r}")


@dataclass(frozen=True)
class Action:
    key: str
    label: str
    url: str
    style: str  # "default" (the main button) or "danger"


def transition_actions(version: ModelVersion, user) -> list[Action]:
    """The moves this user may make on this version now: the FSM says the state allows them and
    the user holds the transition's permission."""
    actions = []

    def url(key: str) -> str:
        return reverse(f"admin:mlops_modelversion_{key}", args=[version.pk])

    if has_transition_perm(version.promote, user):
        actions.append(Action("promote", "Promote to champion…", url("promote"), "default"))
    if has_transition_perm(version.reject, user):
        actions.append(Action("reject", "Reject (archive)…", url("reject"), "danger"))
    target = rollback_target(name=version.name, segment=version.segment)
    if (
        target is not None
        and version.status in (Status.CHAMPION, Status.ARCHIVED)
        and (version.status == Status.CHAMPION or version.pk == target.pk)
        and has_transition_perm(target.restore, user)
    ):
        actions.append(
            Action("rollback", f"Roll back to {target.version}…", url("rollback"), "danger")
        )
    return actions


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 70}),
        max_length=2000,
        help_text="Recorded in the version's history with your name.",
    )
    # The champion the person saw when confirming; a promotion against another one is refused.
    champion_id = forms.IntegerField(required=False, widget=forms.HiddenInput)


@admin.register(ModelVersion, site=tenant_admin)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = [
        "version_link",
        "status_label",
        "name",
        "segment",
        "algorithm",
        "mae",
        "mape",
        "interval_coverage",
        "trigger",
        "created_at",
        "promoted_at",
    ]
    list_filter = ["status", "segment", "algorithm", "name", "trigger"]
    search_fields = ["version", "name", "segment", "artifact_sha256"]
    list_select_related = ["parent"]
    date_hierarchy = "created_at"
    list_per_page = 50

    def has_add_permission(self, request):
        return False  # versions are registered by training, never typed in

    def has_change_permission(self, request, obj=None):
        return False  # status moves go through the buttons on the review page

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Version", ordering="version_number")
    def version_link(self, version):
        return format_html(
            '<a href="{}"><strong>{}</strong></a>', review_url(version), version.version
        )

    @admin.display(description="Status", ordering="status")
    def status_label(self, version):
        return status_badge(version)

    @admin.display(description="MAE")
    def mae(self, version):
        return format_metric("mae", (version.metrics or {}).get("mae"))

    @admin.display(description="MAPE")
    def mape(self, version):
        return format_metric("mape", (version.metrics or {}).get("mape"))

    @admin.display(description="Interval hit rate")
    def interval_coverage(self, version):
        return format_metric("interval_coverage", (version.metrics or {}).get("interval_coverage"))

    def get_urls(self):
        def view(key):
            return self.admin_site.admin_view(
                lambda request, object_id: self.transition_view(request, object_id, key)
            )

        return [
            path("<int:object_id>/promote/", view("promote"), name="mlops_modelversion_promote"),
            path("<int:object_id>/reject/", view("reject"), name="mlops_modelversion_reject"),
            path("<int:object_id>/rollback/", view("rollback"), name="mlops_modelversion_rollback"),
            *super().get_urls(),
        ]

    def _version(self, request, object_id) -> ModelVersion:
        version = get_object_or_404(
            ModelVersion.objects.select_related("parent", "created_by"), pk=object_id
        )
        if not self.has_view_permission(request, version):
            raise PermissionDenied
        return version

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The review page: read-only; every change is a button that calls a service."""
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        version = self._version(request, object_id)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"{version.name} {version.version} [{version.segment}]",
            "original": version,
            "status_badge": status_badge(version),
            "backtest": backtest_section(version),
            "metric_rows": metric_rows(version.metrics or {}),
            "decision": decision_section(version),
            "lineage": lineage_section(version),
            "importance": importance_section(version),
            "history": history_section(version),
            "incidents": incident_rows(version),
            "actions": transition_actions(version, request.user),
            "canary": canary_section(version, request.user),
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/mlops/modelversion/review.html", context)

    def transition_view(self, request, object_id, key):
        """GET asks for a reason (and, to promote, shows the gate's numbers); POST calls the
        registry service. Users without the permission get 403 whatever they send."""
        version = self._version(request, object_id)
        allowed = {action.key: action for action in transition_actions(version, request.user)}
        if key not in allowed:
            if self._lacks_permission(version, request.user, key):
                raise PermissionDenied
            messages.error(
                request, f"{version.version} cannot be {key}d while it is {version.status}."
            )
            return HttpResponseRedirect(review_url(version))
        champion = comparison_champion(version)
        form = ReasonForm(
            request.POST or None, initial={"champion_id": getattr(champion, "pk", None)}
        )
        if request.method == "POST" and form.is_valid():
            seen = form.cleaned_data.get("champion_id")
            if key == "promote" and seen != getattr(champion, "pk", None):
                messages.warning(
                    request,
                    "The champion changed while you were reviewing; check the numbers again.",
                )
                form = ReasonForm(initial={"champion_id": getattr(champion, "pk", None)})
            else:
                return self._apply(request, version, key, form.cleaned_data["reason"])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"{allowed[key].label.rstrip('…')}: {version.name} {version.version}",
            "original": version,
            "action": allowed[key],
            "form": form,
            "champion": champion,
            "decision": decision_section(version) if key == "promote" else None,
            "rollback_to": rollback_target(name=version.name, segment=version.segment)
            if key == "rollback"
            else None,
        }
        return TemplateResponse(
            request, "admin/mlops/modelversion/confirm_transition.html", context
        )

    @staticmethod
    def _lacks_permission(version: ModelVersion, user, key: str) -> bool:
        return not user.has_perm(transition_permission(TRANSITION_METHODS[key]))

    def _apply(self, request, version: ModelVersion, key: str, reason: str):
        try:
            if key == "promote":
                result = promote_to_champion(
                    version=version,
                    actor=request.user,
                    reason=reason,
                    evidence={"via": "admin", "gate": version.last_evaluation or {}},
                )
                done = f"{result.version} is now the champion of {result.name} [{result.segment}]."
            elif key == "reject":
                result = reject_model_version(version=version, actor=request.user, reason=reason)
                done = f"{result.version} was rejected and archived."
            else:
                result = rollback_champion(
                    name=version.name, segment=version.segment, actor=request.user, reason=reason
                )
                done = f"Rolled back: {result.version} is the champion again."
        except TransitionNotAllowed as exc:
            messages.error(request, f"Nothing was changed: {exc}")
            return HttpResponseRedirect(review_url(version))
        messages.success(request, done)
        return HttpResponseRedirect(review_url(result))
