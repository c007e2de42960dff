"""Tenant admin of the alert inbox: alerts with approve/dismiss, channels, and the delivery log."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Case, IntegerField, Value, When
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django_fsm import TransitionNotAllowed

from alerts.models import (
    MLAlert,
    NotificationChannel,
    NotificationDelivery,
    NotificationPreference,
    UndeliverableRecipient,
)
from alerts.registry import actions_for, can_approve
from alerts.selectors import OPEN_STATUSES, unread_alert_count
from alerts.services import act_on_alert, clear_undeliverable, enable_channel, mark_alert_read
from config.admin_sites import tenant_admin
from config.admin_tables import pairs_table

SEVERITY_COLOURS = {"critical": "#b00020", "warning": "#a15c00", "info": "#1f5fa8"}


def review_target(alert: MLAlert) -> tuple[str, str] | None:
    """Where a person reviews what the alert is about: the page its owner names (a drift
    alert's incident), else its model version's review page, or its experiment's page; None for
    an alert about none of them."""
    owner = actions_for(alert.alert_type).review
    target = owner(alert) if owner else None
    if target is not None:
        return target
    try:
        if alert.model_version_id:
            url = reverse("admin:mlops_modelversion_change", args=[alert.model_version_id])
            return url, f"Review {alert.model_version.version}"
        if alert.experiment_id:
            url = reverse("admin:experiments_modelexperiment_change", args=[alert.experiment_id])
            return url, "Open the experiment"
    except NoReverseMatch:
        return None
    return None


class ReadOnlyAdminMixin:
    """Records written only by services: people look, never add, edit or delete by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class DeliveryInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = NotificationDelivery
    fields = ("created_at", "channel", "recipient", "status", "attempt", "permanent", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("created_at", "pk")
    verbose_name_plural = "Notification deliveries"


def _disabled_channel_warning(request) -> None:
    for channel in NotificationChannel.objects.filter(enabled=False):
        messages.warning(
            request,
            f"{channel.get_kind_display()} notifications are disabled since "
            f"{channel.disabled_at:%Y-%m-%d %H:%M %Z}: {channel.disabled_reason}. "
            "Alerts still reach the inbox; re-enable the channel in Notification channels "
            "once the cause is fixed, and the alerts it missed are sent.",
        )


def decision_context(alert: MLAlert, user, *, next_url: str = "") -> dict:
    """What the alert's Decide form offers this user, each button labelled with what it does:
    Approve only when approving would do what the alert proposes (its owner says when), else
    Acknowledge; Dismiss always; nothing once the alert is closed or for a user who may not
    act. The owner's context (the decision the alert is about) comes along."""
    owner = actions_for(alert.alert_type).admin_context
    context = {
        "approve_label": "Approve",
        "acknowledge_label": "Acknowledge",
        "dismiss_label": "Dismiss",
        **((owner(alert) or {}) if owner else {}),
    }
    return {
        **context,
        "alert": alert,
        "next": next_url,
        "can_decide": alert.status in OPEN_STATUSES and user.has_perm("alerts.act_on_mlalert"),
        "can_approve": can_approve(alert),
    }


@admin.register(MLAlert, site=tenant_admin)
class MLAlertAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "title_shown",
        "severity_label",
        "alert_type",
        "status",
        "requires_action_label",
        "review_link",
        "last_raised_at",
    )
    list_display_links = ("title_shown",)
    list_filter = ("status", "severity", "alert_type")
    search_fields = ("title", "message", "dedup_key")
    date_hierarchy = "created_at"
    list_select_related = ("model_version",)
    actions = ("mark_read", "dismiss_selected")
    inlines = (DeliveryInline,)
    change_form_template = "admin/alerts/mlalert/change_form.html"
    fieldsets = (
        (
            None,
            {"fields": ("title", "severity", "alert_type", "status", "message", "metadata_table")},
        ),
        ("About", {"fields": ("model_version_link", "experiment", "action_url", "dedup_key")}),
        ("Occurrences", {"fields": ("occurrences", "created_at", "last_raised_at")}),
        (
            "Decision",
            {
                "fields": (
                    "read_by",
                    "read_at",
                    "action_taken",
                    "actioned_by",
                    "actioned_at",
                    "action_note",
                )
            },
        ),
    )
    readonly_fields = (
        "title",
        "severity",
        "alert_type",
        "status",
        "message",
        "metadata_table",
        "model_version_link",
        "experiment",
        "action_url",
        "dedup_key",
        "occurrences",
        "created_at",
        "last_raised_at",
        "read_by",
        "read_at",
        "action_taken",
        "actioned_by",
        "actioned_at",
        "action_note",
    )

    def get_ordering(self, request):
        # The inbox lists unread alerts first, newest first within each group.
        unread_first = Case(
            When(status=MLAlert.Status.UNREAD, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
        return (unread_first.asc(), "-created_at", "-pk")

    @admin.display(description="Alert", ordering="title")
    def title_shown(self, alert):
        repeats = f" (×{alert.occurrences})" if alert.occurrences > 1 else ""
        if alert.status == MLAlert.Status.UNREAD:
            return format_html('<strong class="arena-unread">{}</strong>{}', alert.title, repeats)
        return format_html("{}{}", alert.title, repeats)

    @admin.display(description="Severity", ordering="severity")
    def severity_label(self, alert):
        # Colour and word: the word carries the meaning for people who cannot tell the colours.
        return format_html(
            '<span class="arena-pill severity-{}" style="background: {}">{}</span>',
            alert.severity,
            SEVERITY_COLOURS.get(alert.severity, "#5f6b7a"),
            alert.get_severity_display(),
        )

    @admin.display(description="Review")
    def review_link(self, alert):
        target = review_target(alert)
        if target is None:
            return "—"
        url, label = target
        return format_html('<a class="nowrap" href="{}">{}</a>', url, label)

    @admin.display(description="Action required")
    def requires_action_label(self, alert):
        return alert.requires_action

    @admin.display(description="Details")
    def metadata_table(self, alert):
        return pairs_table(alert.metadata, labelled=True)

    @admin.display(description="Model version")
    def model_version_link(self, alert):
        version = alert.model_version
        if version is None:
            return "-"
        try:
            url = reverse("admin:mlops_modelversion_change", args=[version.pk])
        except NoReverseMatch:
            return str(version)
        return format_html('<a href="{}">{}</a>', url, version)

    def has_act_permission(self, request):
        return request.user.has_perm("alerts.act_on_mlalert")

    def get_urls(self):
        decide = self.admin_site.admin_view(self.decide_view)
        return [
            path("<path:object_id>/decide/", decide, name="alerts_mlalert_decide"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        _disabled_channel_warning(request)
        unread = unread_alert_count()
        extra_context = {**(extra_context or {}), "title": f"ML alerts ({unread} unread)"}
        return super().changelist_view(request, extra_context=extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        alert = self.get_object(request, object_id)
        if (
            alert is not None
            and request.method == "GET"
            and self.has_view_permission(request, alert)
        ):
            # Opening an alert is reading it.
            alert = mark_alert_read(alert=alert, user=request.user)
        extra_context = {**(extra_context or {})}
        if alert is not None:
            decision = decision_context(alert, request.user)
            extra_context.update(decision=decision, review=review_target(alert))
        return super().change_view(request, object_id, form_url, extra_context)

    def decide_view(self, request, object_id):
        """Approve or dismiss one alert (POST with `action` and an optional `note`)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        alert = get_object_or_404(MLAlert, pk=object_id)
        action = request.POST.get("action", "")
        try:
            alert = act_on_alert(
                alert=alert, user=request.user, action=action, note=request.POST.get("note", "")
            )
        except (PermissionDenied, TransitionNotAllowed, ValidationError, ValueError) as exc:
            messages.error(request, f"Nothing was changed: {exc}")
        else:
            decision = alert.metadata.get("decision") or {}
            done = {"promoted": "promoted to champion", "archived": "archived", "kept": "kept"}
            detail = (
                f" {decision['version']} was {done.get(decision['result'], decision['result'])}."
                if decision.get("version")
                else ""
            )
            messages.success(request, f"Alert {alert.get_status_display().lower()}.{detail}")
        back = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(
            back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            back = reverse("admin:alerts_mlalert_change", args=[alert.pk])
        return HttpResponseRedirect(back)

    @admin.action(description="Mark selected alerts as read")
    def mark_read(self, request, queryset):
        for alert in queryset.filter(status=MLAlert.Status.UNREAD):
            mark_alert_read(alert=alert, user=request.user)

    @admin.action(description="Dismiss selected alerts", permissions=["act"])
    def dismiss_selected(self, request, queryset):
        dismissed = 0
        for alert in queryset.filter(status__in=OPEN_STATUSES):
            try:
                act_on_alert(alert=alert, user=request.user, action="dismiss")
            except (PermissionDenied, TransitionNotAllowed, ValidationError) as exc:
                messages.error(request, f"{alert}: {exc}")
            else:
                dismissed += 1
        messages.success(request, f"Dismissed {dismissed} alert(s).")


def _undeliverable_warning(request) -> None:
    marked = list(UndeliverableRecipient.objects.values_list("recipient", flat=True)[:6])
    if marked:
        shown = ", ".join(marked[:5]) + (", …" if len(marked) > 5 else "")
        messages.warning(
            request,
            f"Refused for good by the mail server, so no longer emailed: {shown}. Fix the "
            "address (or the mailbox) and clear it in Undeliverable recipients.",
        )


class UndeliverableInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = UndeliverableRecipient
    fields = ("recipient", "reason", "marked_at", "alert")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "Undeliverable recipients (not tried again until cleared)"


@admin.register(NotificationChannel, site=tenant_admin)
class NotificationChannelAdmin(admin.ModelAdmin):
    list_display = ("kind", "enabled", "min_severity", "disabled_at", "disabled_reason")
    list_filter = ("enabled", "kind")
    fields = ("kind", "enabled", "min_severity", "disabled_at", "disabled_reason", "enabled_since")
    readonly_fields = ("kind", "enabled", "disabled_at", "disabled_reason", "enabled_since")
    actions = ("reenable",)
    inlines = (UndeliverableInline,)

    def has_add_permission(self, request):
        return False  # one per kind, created on first use

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        _disabled_channel_warning(request)
        _undeliverable_warning(request)
        return super().changelist_view(request, extra_context=extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "GET":
            _disabled_channel_warning(request)
            _undeliverable_warning(request)
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description="Re-enable and send what they missed", permissions=["change"])
    def reenable(self, request, queryset):
        for channel in queryset:
            try:
                queued = enable_channel(channel=channel, user=request.user)
            except PermissionDenied as exc:
                messages.error(request, str(exc))
            else:
                messages.success(
                    request,
                    f"{channel.get_kind_display()} enabled; {queued} alert(s) queued again.",
                )


@admin.register(NotificationDelivery, site=tenant_admin)
class NotificationDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "alert",
        "channel",
        "recipient",
        "status",
        "attempt",
        "permanent",
        "error",
    )
    list_filter = ("status", "channel__kind", "permanent")
    search_fields = ("recipient", "error", "alert__title")
    list_select_related = ("alert", "channel")
    date_hierarchy = "created_at"


@admin.register(UndeliverableRecipient, site=tenant_admin)
class UndeliverableRecipientAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("recipient", "channel", "reason", "marked_at", "alert")
    list_filter = ("channel__kind",)
    search_fields = ("recipient", "reason")
    list_select_related = ("channel", "alert")
    actions = ("deliver_again",)

    def has_clear_permission(self, request):
        return request.user.has_perm("alerts.change_notificationchannel")

    @admin.action(
        description="Deliver to them again (the address was fixed)", permissions=["clear"]
    )
    def deliver_again(self, request, queryset):
        try:
            cleared = clear_undeliverable(marks=list(queryset), user=request.user)
        except PermissionDenied as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{cleared} recipient(s) will be emailed again.")


@admin.register(NotificationPreference, site=tenant_admin)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ("user", "email_enabled", "min_severity")
    list_filter = ("email_enabled", "min_severity")
    raw_id_fields = ("user",)
