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
    index_template = "admin/tenant_index.html"

    def each_context(self, request):
        context = super().each_context(request)
        tenant = getattr(request, "tenant", None)
        if tenant is not None:
            context["site_header"] = f"Forecast Arena — {tenant.name}"
        user = getattr(request, "user", None)
        if user is not None and user.is_active and user.has_perm("alerts.view_mlalert"):
            from alerts.selectors import unread_alert_count

            context["unread_alert_count"] = unread_alert_count()  # the header's badge
        return context

    def get_urls(self):
        from django.urls import path

        from mlops.admin.series import series_explorer

        def explorer(request):
            return series_explorer(request, self)

        return [
            path("series/", self.admin_view(explorer), name="series_explorer"),
            *super().get_urls(),
        ]

    def index(self, request, extra_context=None):
        """The home page: models side by side, unread alerts, retrains and next runs."""
        from config.admin_home import home_context

        return super().index(request, {**home_context(request), **(extra_context or {})})


public_admin = PublicAdminSite(name="admin")
tenant_admin = TenantAdminSite(name="admin")
