"""URLs of a tenant's host: the tenant admin and the REST API."""

from django.urls import include, path
from django.views.generic import RedirectView

from config.admin_sites import tenant_admin

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", tenant_admin.urls),
    path("api/v1/", include("config.urls_api")),
]
