"""manage.py replay_operations --tenant SLUG --start DATE --end DATE: replay days of operations."""

import datetime as dt
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from config.console import Console
from forecasting.management.commands.import_sales import find_tenant
from forecasting.services.import_files import ImportRejected
from mlops.services.replay import ReplayPlan, run_replay, sandbox_slug
from mlops.services.replay_canary import CanaryReplay
from tenants.selectors import parse_policy_overrides


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD)") from None


DEFAULT_CANARY_STEPS = "10,50,100"


def _shares(value: str) -> tuple[float, ...]:
    """`10,50,100` (percent of the series at each step) as shares."""
    try:
        percents = [float(each) for each in value.split(",")]
    except ValueError:
        percents = []
    if not percents or not all(0 < each <= 100 for each in percents):
        raise CommandError(
            f"--canary-steps {value!r}: give percentages above 0 and at most 100, separated by "
            "commas, e.g. 10,50,100"
        )
    return tuple(each / 100 for each in percents)


def _canary(options) -> CanaryReplay | None:
    """The canary the options ask for, or None; its other options need --canary."""
    if options["canary"] is None:
        others = ("canary_start", "canary_steps", "canary_bake_days")
        given = [f"--{name.replace('_', '-')}" for name in others if options[name] is not None]
        if given:
            needs = "needs" if len(given) == 1 else "need"
            raise CommandError(f"{', '.join(given)} {needs} --canary VERSION.")
        return None
    return CanaryReplay(
        version=options["canary"],
        shares=_shares(options["canary_steps"] or DEFAULT_CANARY_STEPS),
        bake_days=1 if options["canary_bake_days"] is None else options["canary_bake_days"],
        start=options["canary_start"],
    )


def _refusal(error: ImportRejected) -> str:
    return "; ".join([error.message, *(str(each) for each in error.errors[:5])])


def _read(reader, path: str | None):
    """The file's rows as `reader` reads them (None without a path); a missing or unreadable
    file ends the command saying why."""
    if not path:
        return None
    try:
        return reader(path)
    except FileNotFoundError:
        raise CommandError(f"No such file: {path}") from None
    except ImportRejected as error:
        raise CommandError(_refusal(error)) from None


class Command(BaseCommand):
    help = (
        "Replay a tenant's days of operations in a sandbox tenant: for each day its sales arrive, "
        "then its scheduled jobs run at the local times Beat would run them. Writes a JSON "
        "report (champions and their age, T-1 errors, alerts and emails, retrains with their "
        "decisions, promotions, incidents, canary rollouts). The tenant itself is not changed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="Slug of the tenant to replay")
        parser.add_argument("--start", required=True, type=_date, help="First day replayed")
        parser.add_argument("--end", required=True, type=_date, help="Last day replayed")
        parser.add_argument(
            "--sales", help="CSV or Parquet sales file to replay (default: the tenant's history)"
        )
        parser.add_argument(
            "--calendar",
            help="CSV or Parquet promotion calendar to replay, with known_since (default: the "
            "tenant's own calendar when its own sales are replayed)",
        )
        parser.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="POLICY=VALUE",
            help="Try another policy value, e.g. drift_threshold_pct=10 (repeatable)",
        )
        parser.add_argument(
            "--approve-after-days",
            type=int,
            help="Approve each review the evidence recommends this many days after its alert "
            "(as a person would); without it nothing is approved",
        )
        parser.add_argument(
            "--canary",
            metavar="VERSION",
            help="Roll out this version of the tenant (e.g. v7) as a canary plan in the replay: "
            "its recipe is trained on the sales before the plan's first day, then the daily "
            "canary judging rolls it back, steps it up or promotes it",
        )
        parser.add_argument(
            "--canary-start", type=_date, help="Day the canary plan starts (default: --start)"
        )
        parser.add_argument(
            "--canary-steps",
            metavar="PERCENTS",
            help="Share of the series at each step, in percent, each larger than the one "
            f"before (default {DEFAULT_CANARY_STEPS})",
        )
        parser.add_argument(
            "--canary-bake-days", type=int, help="Judged days each step bakes (default 1)"
        )
        parser.add_argument("--report", required=True, help="Where to write the JSON report")

    def handle(self, *args, **options):
        source = find_tenant(options["tenant"])
        if source.replay_of_id is not None:
            raise CommandError(f"{source.slug} is itself a replay sandbox; replay its source.")
        try:
            overrides = parse_policy_overrides(options["set"])
        except ValueError as error:
            raise CommandError(str(error)) from None
        from forecasting.services.calendar import read_calendar_file
        from forecasting.services.imports import read_sales_file

        sales = _read(read_sales_file, options["sales"])
        calendar = _read(read_calendar_file, options["calendar"])
        plan = ReplayPlan(
            source=source,
            start=options["start"],
            end=options["end"],
            sales=sales,
            calendar=calendar,
            overrides=overrides,
            approve_after_days=options["approve_after_days"],
            canary=_canary(options),
        )
        console = Console(self.stdout)
        days = (plan.end - plan.start).days + 1
        console.heading(
            f"Replaying {source.slug} from {plan.start} to {plan.end} ({days} days) in the "
            f"sandbox tenant {sandbox_slug(source)}"
        )
        try:
            report = run_replay(
                plan,
                progress=lambda items: console.progress(
                    items, total=len(items), label="days: sales, then the next morning's jobs"
                ),
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        except ImportRejected as error:  # a day's sales or plans the import refuses
            raise CommandError(_refusal(error)) from None
        path = Path(options["report"])
        path.write_text(json.dumps(report, indent=2))
        summary = report["summary"]
        console.say(f"  report: {path}")
        console.say(f"  oldest champion: {summary['max_champion_age_days']} day(s) of data age")
        console.say(f"  alerts: {summary['alerts_by_type'] or 'none'}")
        console.say(f"  critical emails: {summary['critical_emails']}")
        console.say(f"  incidents: {len(summary['incidents'])}")
        for plan in summary["rollouts"]:
            console.say(
                f"  canary of {plan['version']}: {plan['outcome'].replace('_', ' ')} at step "
                f"{plan['step']} ({plan['share']:.0%}), started {plan['started_on']}"
                + (f", ended {plan['ended_on']}" if plan["ended_on"] else "")
            )
        console.say(f"  promotions: {len(summary['promotions'])}, in {summary['wall_seconds']}s")
