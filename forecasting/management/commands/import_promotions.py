"""manage.py import_promotions FILE --tenant SLUG: validate a promotion calendar file and load it."""

from django.core.management.base import BaseCommand

from forecasting.management.commands.import_sales import load_file
from forecasting.services import import_promotion_calendar
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
        load_file(
            self,
            tenant=tenant,
            file=file,
            load=lambda: import_promotion_calendar(source=file, file_format=format),
        )
