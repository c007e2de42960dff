from django_tenants.utils import schema_context

from tenants.selectors import current_tenant


def test_current_tenant_has_the_tenants_policy_inside_schema_context(tenant, monkeypatch):
    # The session's tenant object outlives this test's transaction: its attribute is put back.
    monkeypatch.setattr(tenant, "drift_threshold_pct", 22.0)
    tenant.save()
    with schema_context("acme"):
        found = current_tenant()
        assert found.pk == tenant.pk
        assert found.drift_threshold_pct == 22.0
    with schema_context("public"):
        assert current_tenant() is None
