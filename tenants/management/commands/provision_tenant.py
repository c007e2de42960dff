"""manage.py provision_tenant SLUG: create or complete a tenant (safe to run again)."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.services import provision_tenant


class Command(BaseCommand):
    help = "Create a tenant (schema, domain, migrations, admin user, roles, schedules), or complete an existing one."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name")
        parser.add_argument("--time-zone", default="UTC")
        parser.add_argument("--domain", help="Host name; default <slug>.<BASE_DOMAIN>")
        parser.add_argument("--admin-username", default="admin")
        parser.add_argument("--admin-email")
        parser.add_argument(
            "--admin-password", help="Set this password (also on an existing admin user)"
        )

    def handle(self, *args, **options):
        try:
            result = provision_tenant(
                slug=options["slug"],
                name=options["name"],
                time_zone=options["time_zone"],
                domain=options["domain"],
                admin_username=options["admin_username"],
                admin_email=options["admin_email"],
                admin_password=options["admin_password"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        verb = "Created" if result.created else "Updated"
        self.stdout.write(f"{verb} tenant {result.tenant.slug!r} at {result.domain}")
        if result.admin_password:
            self.stdout.write(
                f"Admin user: {result.admin_username} / password: {result.admin_password}"
            )
