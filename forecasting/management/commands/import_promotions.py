"""manage.py import_promotions FILE --tenant SLUG: validate a promotion calendar file and load it."""

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from config.console import Console
from forecasting.management.commands.import_sales import find_tenant
from forecasting.services import CalendarImportError, import_promotion_calendar
from forecasting.services.import_files import FILE_FORMATS


class Command(BaseCommand):
    help = (
        "Import planned promotions and prices from a CSV or Parquet file into a tenant (columns: "
        "see docs/IMPORT.md). The whole file is validated first; a file with any bad row "
        "changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="Path of a .csv or .parquet file")
        parser.add_argument("--tenant", required=True, help="Tenant slug")
        parser.add_argument(
            "--format", choices=FILE_FORMATS, help="File format (default: from the file name)"
        )

    def handle(self, *args, file, tenant, format, **options):
        tenant_obj = find_tenant(tenant)
        console = Console(self.stdout)
        with schema_context(tenant_obj.schema_name):
            try:
                with console.step(f"validating and loading {file}"):
                    summary = import_promotion_calendar(source=file, file_format=format)
            except CalendarImportError as exc:
                for error in exc.errors:
                    self.stderr.write(f"  {error}")
                if exc.error_count > len(exc.errors):
                    self.stderr.write(f"  ... and {exc.error_count - len(exc.errors):,} more")
                raise CommandError(exc.message) from None
            except FileNotFoundError:
                raise CommandError(f"No such file: {file}") from None
        console.say(f"Imported {file} into {tenant_obj.slug}")
        for line in summary.lines():
            console.say(f"  {line}")
