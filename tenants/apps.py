from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created
        from django.db.models.signals import post_save

        from config.read_cache import install_write_watch

        # Every statement on every connection: a write ends the tenant's cached API reads.
        connection_created.connect(install_write_watch, dispatch_uid="read-cache-write-watch")
        # A tenant's policy lives on its row in the public schema.
        post_save.connect(
            _renew_tenant_reads, sender="tenants.Tenant", dispatch_uid="read-cache-tenant"
        )


def _renew_tenant_reads(sender, instance, **kwargs) -> None:
    from config.read_cache import note_write

    note_write(instance.schema_name)
