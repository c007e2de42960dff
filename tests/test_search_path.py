"""The search path is set once per tenant switch (TENANT_LIMIT_SET_CALLS), and a rollback that
undoes its SET never leaves a query in the wrong tenant's schema."""

from django.db import connection, transaction
from django_tenants.utils import tenant_context

from forecasting.models import Store


def test_a_rolled_back_savepoint_leaves_queries_in_the_current_tenant(tenant, other_tenant):
    Store.objects.create(code="ACME-1")
    with tenant_context(other_tenant):
        Store.objects.create(code="GLOBEX-1")

    connection.set_tenant(other_tenant)
    try:
        with transaction.atomic():
            assert Store.objects.filter(code="GLOBEX-1").exists()  # SET inside the savepoint
            raise RuntimeError("roll it back")
    except RuntimeError:
        pass
    codes = set(Store.objects.values_list("code", flat=True))
    connection.set_tenant(tenant)

    assert codes == {"GLOBEX-1"}
    assert set(Store.objects.values_list("code", flat=True)) == {"ACME-1"}
