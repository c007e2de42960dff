from django.apps import AppConfig


class MlopsConfig(AppConfig):
    name = "mlops"
    verbose_name = "Model ops"

    def ready(self) -> None:
        # alerts sits below mlops: it learns here what approving the registry's alerts does.
        from mlops.services.review import register_alert_actions

        register_alert_actions()
