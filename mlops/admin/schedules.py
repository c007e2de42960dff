"""Tenant admin of model ops: the tenant's schedules (edit, enable, run now)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html
from django_celery_beat import validators

from config.admin_sites import tenant_admin
from mlops.schedules import TenantSchedule, job_for, next_run_at, run_job_now, set_crontab


class ScheduleForm(forms.ModelForm):
    """Edits the timing of one job; the crontab row is chosen, never edited in place."""

    minute = forms.CharField(validators=[validators.minute_validator])
    hour = forms.CharField(validators=[validators.hour_validator])
    day_of_week = forms.CharField(
        validators=[validators.day_of_week_validator], help_text="0 = Sunday; * = every day"
    )
    day_of_month = forms.CharField(validators=[validators.day_of_month_validator])
    month_of_year = forms.CharField(validators=[validators.month_of_year_validator])
    CRONTAB_FIELDS = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")

    class Meta:
        model = TenantSchedule
        fields = ["enabled"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        crontab = self.instance.crontab
        for name in self.CRONTAB_FIELDS:
            if crontab is None:  # an interval schedule: only enabling applies
                del self.fields[name]
            else:
                self.fields[name].initial = getattr(crontab, name)


@admin.register(TenantSchedule, site=tenant_admin)
class TenantScheduleAdmin(admin.ModelAdmin):
    form = ScheduleForm
    list_display = ["job", "when", "enabled", "last_run_at", "next_run", "run_now_button"]
    list_filter = ["enabled"]
    actions = ["run_selected_now", "enable_selected", "disable_selected"]
    readonly_fields = ["job", "task", "description", "time_zone", "last_run_at", "next_run"]
    fields = [
        "job",
        "description",
        "enabled",
        "minute",
        "hour",
        "day_of_week",
        "day_of_month",
        "month_of_year",
        "time_zone",
        "last_run_at",
        "next_run",
    ]

    def get_queryset(self, request):
        from mlops.schedules import tenant_schedules

        return tenant_schedules(tenant=request.tenant)

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("mlops.view_tenantschedule") or self.has_change_permission(
            request, obj
        )

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("mlops.manage_schedules")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_fields(self, request, obj=None):
        if obj is not None and obj.crontab is None:
            return [name for name in self.fields if name not in ScheduleForm.CRONTAB_FIELDS]
        return self.fields

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if obj.crontab is None:
            obj.save()
            return
        set_crontab(
            task=obj,
            minute=data["minute"],
            hour=data["hour"],
            day_of_week=data["day_of_week"],
            day_of_month=data["day_of_month"],
            month_of_year=data["month_of_year"],
            time_zone=request.tenant.time_zone,
        )

    @admin.display(description="Job")
    def job(self, obj):
        return obj.name.split("@", 1)[0].replace("_", " ").capitalize()

    @admin.display(description="When")
    def when(self, obj):
        c = obj.crontab
        if c is None:
            return "—"
        return (
            f"{c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week} ({c.timezone})"
        )

    @admin.display(description="Time zone")
    def time_zone(self, obj):
        return str(obj.crontab.timezone) if obj.crontab else "—"

    @admin.display(description="Next run")
    def next_run(self, obj):
        return next_run_at(obj) or "disabled"

    @admin.display(description="")
    def run_now_button(self, obj):
        url = reverse("admin:mlops_tenantschedule_run", args=[obj.pk])
        return format_html('<a class="button" href="{}">Run now</a>', url)

    @admin.action(description="Enable the selected schedules")
    def enable_selected(self, request, queryset):
        for task in queryset:  # save() per row, so Beat notices the change
            task.enabled = True
            task.save()

    @admin.action(description="Disable the selected schedules")
    def disable_selected(self, request, queryset):
        for task in queryset:
            task.enabled = False
            task.save()

    @admin.action(description="Run the selected jobs now")
    def run_selected_now(self, request, queryset):
        for task in queryset:
            self._queue(request, task)

    def get_urls(self):
        return [
            path(
                "<int:pk>/run/",
                self.admin_site.admin_view(self.run_now_view),
                name="mlops_tenantschedule_run",
            ),
            *super().get_urls(),
        ]

    def run_now_view(self, request, pk):
        """GET asks for confirmation; POST queues the job for this tenant."""
        changelist = reverse("admin:mlops_tenantschedule_changelist")
        if not self.has_change_permission(request):
            raise PermissionDenied
        task = get_object_or_404(self.get_queryset(request), pk=pk)
        if request.method == "POST":
            self._queue(request, task)
            return HttpResponseRedirect(changelist)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Run “{self.job(task)}” now?",
            "task": task,
            "opts": self.model._meta,
            "description": task.description,
        }
        return TemplateResponse(request, "admin/mlops/run_job_confirm.html", context)

    def _queue(self, request, task):
        job = job_for(task)
        if job is None:
            self.message_user(request, f"{task.name} is not a known job.", messages.ERROR)
            return
        task_id = run_job_now(job=job, tenant=request.tenant)
        try:
            where = format_html(
                " Its outcome appears in <a href='{}'>this list</a>.", reverse(job.results_url)
            )
        except NoReverseMatch:
            where = ""
        self.message_user(
            request,
            format_html("Queued {} (task {}).{}", self.job(task), task_id, where),
            messages.SUCCESS,
        )
