"""manage.py demo: provision the `demo` tenant and print how to log in."""

import os

from django.conf import settings
from django.core.management.base import BaseCommand

from tenants.services import provision_tenant

DEMO_PASSWORD = os.environ.get("DEMO_ADMIN_PASSWORD", "arena-demo")


class Command(BaseCommand):
    help = "Prepare the demo tenant (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument("--quick", action="store_true", help="A small data set, for a fast run")
        parser.add_argument("--reset", action="store_true", help="Start the demo tenant afresh")

    def handle(self, *args, **options):
        result = provision_tenant(
            slug="demo", name="Demo Retail", time_zone="Europe/London", admin_password=DEMO_PASSWORD
        )
        port = settings.SITE_PORT
        self.stdout.write(
            f"Demo tenant at http://{result.domain}:{port}/admin/ — "
            f"log in as {result.admin_username} / {DEMO_PASSWORD}"
        )
