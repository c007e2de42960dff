"""Signals of the tenants app, the lowest layer: apps above it attach their per-tenant
resources without tenants importing them."""

from django.dispatch import Signal

# Sent (sender=Tenant, tenant=...) at the end of every provision_tenant call, whether it created
# the tenant or completed an existing one: receivers make what they own exist, idempotently.
tenant_provisioned = Signal()
