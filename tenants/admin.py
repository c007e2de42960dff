"""Platform admin: tenants (with a provisioning action) and their domains."""

from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User

from config.admin_sites import public_admin, tenant_admin
from tenants.models import Domain, Tenant
from tenants.services import provision_tenant


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


@admin.register(Tenant, site=public_admin)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "schema_name", "time_zone", "created_at"]
    search_fields = ["name", "slug"]
    readonly_fields = ["schema_name", "created_at"]
    inlines = [DomainInline]
    actions = ["provision"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "name",
                    "slug",
                    "schema_name",
                    "time_zone",
                    "country",
                    "subdivision",
                    "created_at",
                ]
            },
        ),
        (
            "Model-ops policy",
            {
                "fields": [
                    "promotion_min_improvement_pct",
                    "promotion_min_confidence",
                    "drift_threshold_pct",
                    "overstock_tolerance",
                    "dismissed_challenger",
                    "retrain_period_days",
                    "refresh_margin_pct",
                    "min_shadow_days",
                    "min_post_change_days",
                    "drift_snooze_days",
                    "walk_forward_warm_start",
                ]
            },
        ),
    ]

    def get_readonly_fields(self, request, obj=None):
        # The slug names the schema and host: fixed once the tenant exists.
        return [*self.readonly_fields, "slug"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        result = provision_tenant(slug=obj.slug, name=obj.name, time_zone=obj.time_zone)
        obj.pk = result.tenant.pk
        self.message_user(
            request,
            f"Provisioned {result.domain}: admin user {result.admin_username!r} "
            f"with password {result.admin_password!r} (shown once).",
            messages.SUCCESS,
        )

    @admin.action(description="Provision again (schema, migrations, roles, schedules)")
    def provision(self, request, queryset):
        for tenant in queryset.exclude(schema_name="public"):
            result = provision_tenant(slug=tenant.slug)
            self.message_user(request, f"{result.domain}: provisioned.", messages.SUCCESS)


@admin.register(Domain, site=public_admin)
class DomainAdmin(admin.ModelAdmin):
    list_display = ["domain", "tenant", "is_primary"]
    list_select_related = ["tenant"]


public_admin.register(User, UserAdmin)
public_admin.register(Group, GroupAdmin)


# Each tenant's own users and roles, in its tenant admin.
tenant_admin.register(User, UserAdmin)
tenant_admin.register(Group, GroupAdmin)
