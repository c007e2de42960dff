from django.apps import AppConfig


class MlopsConfig(AppConfig):
    name = "mlops"
    verbose_name = "Model ops"

    def ready(self) -> None:
        # alerts sits below mlops: it learns here what approving the registry's alerts does.
        from mlops.services.review import register_alert_actions

        register_alert_actions()
        # tenants sits below mlops too: each provisioned tenant gets its default schedules.
        from tenants.signals import tenant_provisioned

        tenant_provisioned.connect(_ensure_default_schedules, dispatch_uid="mlops-schedules")


def _ensure_default_schedules(sender, *, tenant, **kwargs) -> None:
    from mlops.schedules import ensure_default_schedules

    ensure_default_schedules(tenant=tenant)
