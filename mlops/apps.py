from django.apps import AppConfig


class MlopsConfig(AppConfig):
    name = "mlops"
    verbose_name = "Model ops"

    def ready(self) -> None:
        # alerts sits below mlops: it learns here what approving the registry's alerts does.
        from mlops.services.review import register_alert_actions

        register_alert_actions()
        # tenants sits below mlops too: each provisioned tenant gets its default schedules.
        from django_tenants.signals import schema_migrated

        from tenants.signals import tenant_provisioned

        tenant_provisioned.connect(_ensure_default_schedules, dispatch_uid="mlops-schedules")
        # ...and so does every tenant whose schema a deploy migrates: a job added to the
        # defaults after a tenant was provisioned reaches it without anyone re-provisioning.
        schema_migrated.connect(_ensure_schedules_of_schema, dispatch_uid="mlops-schedules-migrate")


def _ensure_default_schedules(sender, *, tenant, **kwargs) -> None:
    from mlops.schedules import ensure_default_schedules

    ensure_default_schedules(tenant=tenant)


def _ensure_schedules_of_schema(sender, *, schema_name, **kwargs) -> None:
    from mlops.schedules import ensure_default_schedules
    from tenants.models import Tenant

    # None while a tenant's row is not saved yet; its provisioning adds the jobs then.
    tenant = Tenant.objects.filter(schema_name=schema_name).first()
    if tenant is not None:
        ensure_default_schedules(tenant=tenant)
