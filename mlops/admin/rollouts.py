"""Tenant admin of canary rollouts: the plans, the canary section of a version's review page,
starting a canary, and a manager's pause, resume, abort or skip."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django_fsm import TransitionNotAllowed

from config.admin_sites import tenant_admin
from mlops.admin.history import ReadOnlyAdmin
from mlops.models import GUARDRAIL_METRICS, ModelVersion, RolloutPlan
from mlops.rollout_selectors import ACTIONS_BY_STATUS, latest_rollout, rollout_detail
from mlops.services.lifecycle import SERVE_PERMISSION
from mlops.services.rollout_guardrails import DEFAULT_GUARDRAILS, UNITS
from mlops.services.rollouts import act_on_rollout, start_canary

DEFAULT_TOLERANCES = {rule["metric"]: rule["tolerance"] for rule in DEFAULT_GUARDRAILS}
ACTION_LABELS = {
    "pause": "Pause",
    "resume": "Resume",
    "abort": "Abort",
    "skip": "Skip to next step",
}


def _review_url(version_id: int) -> str:
    return reverse("admin:mlops_modelversion_change", args=[version_id])


def canary_section(version: ModelVersion, user) -> dict[str, Any] | None:
    """The review page's canary block: the newest plan with its timeline and guardrails, the
    buttons this user may press, or the link to start one."""
    plan = latest_rollout(version)
    may_serve = user.has_perm(SERVE_PERMISSION)
    can_start = (
        may_serve
        and version.status in ModelVersion.AWAITING_DECISION
        and (plan is None or not plan.is_active)
    )
    start_url = reverse("admin:mlops_rolloutplan_start", args=[version.pk]) if can_start else None
    if plan is None:
        return {"plan": None, "start_url": start_url}
    detail = rollout_detail(plan)
    actions = [
        {
            "key": key,
            "label": ACTION_LABELS[key],
            "url": reverse("admin:mlops_rolloutplan_act", args=[plan.pk, key]),
        }
        for key in ACTIONS_BY_STATUS.get(plan.status, [])
        if may_serve
    ]
    return {"plan": detail, "actions": actions, "start_url": start_url}


class StartCanaryForm(forms.Form):
    initial_share = forms.FloatField(min_value=0.001, max_value=1, initial=0.1)
    steps = forms.CharField(
        initial="0.25, 0.5, 1.0", required=False, help_text="The later shares, comma-separated"
    )
    bake_days = forms.IntegerField(min_value=1, max_value=60, initial=2)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 70}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for metric in GUARDRAIL_METRICS:
            self.fields[f"tolerance_{metric}"] = forms.FloatField(
                min_value=0,
                required=False,
                initial=DEFAULT_TOLERANCES[metric],
                label=f"{metric} tolerance",
                help_text=f"{UNITS[metric]}; empty: no guardrail on {metric}",
            )

    def clean_steps(self) -> list[float]:
        text = self.cleaned_data["steps"].strip()
        try:
            return [float(part) for part in text.split(",") if part.strip()] if text else []
        except ValueError as error:
            raise forms.ValidationError("Give numbers separated by commas.") from error

    def guardrails(self) -> list[dict[str, Any]]:
        return [
            {"metric": metric, "tolerance": self.cleaned_data[f"tolerance_{metric}"]}
            for metric in GUARDRAIL_METRICS
            if self.cleaned_data.get(f"tolerance_{metric}") is not None
        ]


@admin.register(RolloutPlan, site=tenant_admin)
class RolloutPlanAdmin(ReadOnlyAdmin):
    list_display = ["version_link", "segment", "status", "step_label", "started_on", "ended_on"]
    list_filter = ["status", "segment", "name"]
    list_select_related = ["version"]

    @admin.display(description="Version")
    def version_link(self, plan):
        return format_html(
            '<a href="{}">{}</a>', _review_url(plan.version_id), plan.version.version
        )

    @admin.display(description="Step")
    def step_label(self, plan):
        return f"{plan.step + 1} of {len(plan.shares)} ({plan.share:.0%})"

    def get_urls(self):
        site = self.admin_site
        return [
            path(
                "start/<int:version_id>/",
                site.admin_view(self.start_view),
                name="mlops_rolloutplan_start",
            ),
            path(
                "<int:plan_id>/<str:action>/",
                site.admin_view(self.act_view),
                name="mlops_rolloutplan_act",
            ),
            *super().get_urls(),
        ]

    def start_view(self, request, version_id: int):
        """GET shows the plan's form; POST starts the canary through the service."""
        if not request.user.has_perm(SERVE_PERMISSION):
            raise PermissionDenied
        version = get_object_or_404(ModelVersion, pk=version_id)
        form = StartCanaryForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                start_canary(
                    version=version,
                    actor=request.user,
                    reason=data["reason"],
                    initial_share=data["initial_share"],
                    steps=data["steps"],
                    bake_days=data["bake_days"],
                    guardrails=form.guardrails(),
                )
            except ValidationError as error:
                for field, errors in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            except TransitionNotAllowed as error:
                messages.error(request, f"Nothing was changed: {error}")
                return HttpResponseRedirect(_review_url(version.pk))
            else:
                messages.success(request, f"The canary of {version.version} started.")
                return HttpResponseRedirect(_review_url(version.pk))
        context = {
            **self.admin_site.each_context(request),
            "opts": ModelVersion._meta,
            "title": f"Start a canary: {version.name} {version.version}",
            "original": version,
            "form": form,
        }
        return TemplateResponse(request, "admin/mlops/rolloutplan/start.html", context)

    def act_view(self, request, plan_id: int, action: str):
        """GET asks for a reason; POST makes the move (pause, resume, abort, skip)."""
        if not request.user.has_perm(SERVE_PERMISSION):
            raise PermissionDenied
        plan = get_object_or_404(RolloutPlan.objects.select_related("version"), pk=plan_id)
        if action not in ACTION_LABELS:
            raise PermissionDenied
        form = forms.Form(request.POST or None)
        form.fields["reason"] = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))
        if request.method == "POST" and form.is_valid():
            try:
                act_on_rollout(
                    plan=plan, action=action, actor=request.user, reason=form.cleaned_data["reason"]
                )
            except TransitionNotAllowed as error:
                messages.error(request, f"Nothing was changed: {error}")
            else:
                messages.success(request, f"{ACTION_LABELS[action]}: done.")
            return HttpResponseRedirect(_review_url(plan.version_id))
        context = {
            **self.admin_site.each_context(request),
            "opts": ModelVersion._meta,
            "title": f"{ACTION_LABELS[action]}: the canary of {plan.version.version}",
            "original": plan.version,
            "form": form,
        }
        return TemplateResponse(request, "admin/mlops/rolloutplan/start.html", context)
