from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from forecasting.models import Store
from tests.tenancy import PASSWORD


def _logged_in(host: str) -> Client:
    client = Client(HTTP_HOST=host)
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "admin", "password": PASSWORD}
    )
    assert response.status_code == 302, response.content[:500]
    return client


def test_tenant_admin_lists_only_its_own_data(tenant, other_tenant):
    Store.objects.create(code="ACME-1", name="Acme Main Street")
    with schema_context(other_tenant.schema_name):
        Store.objects.create(code="GLOBEX-1", name="Globex Downtown")
    connection.set_tenant(tenant)

    page = _logged_in("acme.testserver").get("/admin/forecasting/store/")

    assert page.status_code == 200
    assert b"ACME-1" in page.content
    assert b"GLOBEX-1" not in page.content


def test_tenant_admin_never_shows_public_schema_models(tenant):
    client = _logged_in("acme.testserver")
    index = client.get("/admin/").content.decode()
    assert "Stores" in index
    for public_model in ("Tenants", "Domains", "Periodic tasks", "Crontabs"):
        assert public_model not in index
    for url in ("/admin/tenants/tenant/", "/admin/tenants/domain/"):
        assert client.get(url).status_code == 404


def test_a_tenants_login_does_not_open_another_tenants_admin(tenant, other_tenant):
    client = _logged_in("acme.testserver")
    # The same session cookie on another tenant's host is not a session there.
    client.defaults["HTTP_HOST"] = "globex.testserver"
    response = client.get("/admin/forecasting/store/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_public_admin_lists_tenants(tenant):
    with schema_context("public"):
        get_user_model().objects.filter(username="platform").delete()
        get_user_model().objects.create_superuser("platform", "ops@example.com", PASSWORD)
    client = Client(HTTP_HOST="testserver")
    client.post("/admin/login/", {"username": "platform", "password": PASSWORD})
    page = client.get("/admin/tenants/tenant/")
    assert page.status_code == 200
    assert b"Acme Retail" in page.content and b"Globex Stores" in page.content


def test_unknown_host_is_not_found(tenant):
    assert Client(HTTP_HOST="nobody.testserver").get("/admin/").status_code == 404
