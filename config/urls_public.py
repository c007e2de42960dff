"""URLs of the platform host (public schema): the platform admin."""

from django.urls import path
from django.views.generic import RedirectView

from config.admin_sites import public_admin

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", public_admin.urls),
]
