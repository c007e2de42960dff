"""The two admin sites: the platform's (public schema) and each tenant's."""

from django.contrib.admin import AdminSite


class PublicAdminSite(AdminSite):
    site_header = "Forecast Arena — platform"
    site_title = "Forecast Arena platform"
    index_title = "Tenants and schedules"


class TenantAdminSite(AdminSite):
    site_header = "Forecast Arena"
    site_title = "Forecast Arena"
    index_title = "Models, backtests, alerts and experiments"

    def each_context(self, request):
        context = super().each_context(request)
        tenant = getattr(request, "tenant", None)
        if tenant is not None:
            context["site_header"] = f"Forecast Arena — {tenant.name}"
        return context


public_admin = PublicAdminSite(name="admin")
tenant_admin = TenantAdminSite(name="admin")
