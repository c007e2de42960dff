"""manage.py import_sales FILE --tenant SLUG: validate a CSV/Parquet sales file and load it."""

from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from config.console import Console
from forecasting.services import import_sales
from forecasting.services.import_files import ImportRejected
from forecasting.services.imports import FILE_FORMATS
from tenants.models import Tenant


def find_tenant(slug: str) -> Tenant:
    """The tenant with this slug; raises CommandError when there is none."""
    try:
        return Tenant.objects.exclude(schema_name="public").get(slug=slug)
    except Tenant.DoesNotExist:
        raise CommandError(f"No tenant with slug {slug!r}") from None


def load_file(command: BaseCommand, *, tenant: str, file: str, load: Callable[[], Any]) -> None:
    """Run `load` (an import of `file`) in the tenant's schema and say what it wrote; a refused
    file has its problems written to stderr, and ends the command."""
    tenant_obj = find_tenant(tenant)
    console = Console(command.stdout)
    with schema_context(tenant_obj.schema_name):
        try:
            with console.step(f"validating and loading {file}"):
                summary = load()
        except ImportRejected as exc:
            for error in exc.errors:
                command.stderr.write(f"  {error}")
            if exc.error_count > len(exc.errors):
                command.stderr.write(f"  ... and {exc.error_count - len(exc.errors):,} more")
            raise CommandError(exc.message) from None
        except FileNotFoundError:
            raise CommandError(f"No such file: {file}") from None
    console.say(f"Imported {file} into {tenant_obj.slug}")
    for line in summary.lines():
        console.say(f"  {line}")


class Command(BaseCommand):
    help = (
        "Import daily sales from a CSV or Parquet file into a tenant (columns: see docs/IMPORT.md). "
        "The whole file is validated first; a file with any bad row changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="Path of a .csv or .parquet file")
        parser.add_argument("--tenant", required=True, help="Tenant slug")
        parser.add_argument(
            "--format", choices=FILE_FORMATS, help="File format (default: from the file name)"
        )
        parser.add_argument(
            "--reject-unknown",
            action="store_true",
            help="Reject rows of stores and products the tenant lacks instead of creating them",
        )

    def handle(self, *args, file, tenant, format, reject_unknown, **options):
        load_file(
            self,
            tenant=tenant,
            file=file,
            load=lambda: import_sales(
                source=file, file_format=format, create_missing=not reject_unknown
            ),
        )
