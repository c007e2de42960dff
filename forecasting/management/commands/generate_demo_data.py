"""manage.py generate_demo_data --tenant SLUG: load realistic synthetic daily sales into a tenant."""

import datetime as dt
import zoneinfo

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django_tenants.utils import schema_context

from forecasting.management.commands.import_sales import find_tenant
from forecasting.services import SalesImportError, import_promotion_calendar, import_sales
from forecasting.synthetic import generate_sales, promotion_calendar_of, with_stockouts


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD)") from None


class Command(BaseCommand):
    help = (
        "Generate deterministic daily sales (seasonality, trends, promotions, slow movers, three "
        "departments; optional drift) and load them through the sales import."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="Tenant slug")
        parser.add_argument("--stores", type=int, default=10)
        parser.add_argument("--products", type=int, default=20)
        parser.add_argument("--days", type=int, default=730)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--end-date", type=_date, help="Last day of sales (default: yesterday, tenant time)"
        )
        parser.add_argument(
            "--drift-date", type=_date, help="From this day on, demand of some series shifts"
        )
        parser.add_argument(
            "--drift-fraction", type=float, default=0.2, help="Share of series that drift"
        )
        parser.add_argument(
            "--drift-size", type=float, default=0.5, help="Relative demand change (0.5 = +50%%)"
        )
        parser.add_argument(
            "--stockouts",
            type=float,
            default=0.0,
            help="Share of series that run out of stock now and then (censored days)",
        )
        parser.add_argument(
            "--calendar",
            action="store_true",
            help="Also load the promotion calendar behind the promotions (some entered late "
            "or never)",
        )

    def handle(self, *args, **options):
        tenant = find_tenant(options["tenant"])
        end_date = options["end_date"] or (
            timezone.localdate(timezone=zoneinfo.ZoneInfo(tenant.time_zone)) - dt.timedelta(days=1)
        )
        drift_date = options["drift_date"]
        try:
            sales = generate_sales(
                stores=options["stores"],
                products=options["products"],
                days=options["days"],
                seed=options["seed"],
                end_date=end_date,
                drift_date=drift_date,
                drift_fraction=options["drift_fraction"] if drift_date else 0.0,
                drift_size=options["drift_size"] if drift_date else 0.0,
            )
            calendar = promotion_calendar_of(sales, seed=options["seed"])
            if options["stockouts"]:
                sales = with_stockouts(sales, share=options["stockouts"], seed=options["seed"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        with schema_context(tenant.schema_name):
            try:
                summary = import_sales(source=sales)
                if options["calendar"]:
                    calendar_summary = import_promotion_calendar(source=calendar)
            except SalesImportError as exc:  # a generator bug, but say which rows
                details = "; ".join(str(error) for error in exc.errors[:5])
                raise CommandError(f"{exc.message}: {details}") from None
        self.stdout.write(
            f"Generated {options['stores']} stores x {options['products']} products x "
            f"{options['days']} days (seed {options['seed']}) into {tenant.slug}"
            + (f", drift from {drift_date}" if drift_date else "")
        )
        for line in summary.lines():
            self.stdout.write(f"  {line}")
        if options["calendar"]:
            for line in calendar_summary.lines():
                self.stdout.write(f"  {line}")
