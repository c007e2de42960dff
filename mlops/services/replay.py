"""Replaying operations: days of a tenant's history run through its own scheduled jobs, in a
sandbox tenant, at the local times Beat would run them (`manage.py replay_operations`).

The sandbox (`<slug>replay`, a tenant of its own, marked `replay_of`) is rebuilt for every
replay: the source's stores, products and sales before the first day, its model-ops policy with
any `--set` overrides, and its champions' recipes trained on that history. Its Beat rows are
disabled; the replay runs the jobs itself, day by day, with the clock set to each job's local
time, Celery tasks run in-process (so an emergency retrain queued by the 03:00 drift check runs
before 05:00), and emails go to an in-memory outbox that the report counts. A canary plan of
one of the source's versions may start on a replayed day (`replay_canary`); the tenant's own
canary judging then decides it. The source tenant is never written to.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import shutil
import time
import zoneinfo
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import time_machine
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test.utils import override_settings
from django_tenants.utils import schema_exists, tenant_context

from config.celery import app
from mlops.models import DEFAULT_MODEL_NAME, GLOBAL_SEGMENT, DecisionKind, ModelVersion, Trigger
from mlops.schedules import JOBS, periodic_task_name
from mlops.services.decisions import PROMOTE, RetrainDecision, decide_retrain
from mlops.services.replay_canary import (
    CanaryReplay,
    PreparedCanary,
    prepare_canary,
    start_replayed_canary,
)
from tenants.models import Tenant
from tenants.roles import ML_MANAGER
from tenants.selectors import TenantPolicy

REPLAY_USER = "replay"


@dataclass(frozen=True)
class ScheduledRun:
    """One run of a job: when (local), which task."""

    at: dt.datetime
    key: str
    task: str


@dataclass
class ReplayPlan:
    """What to replay: the source tenant, the days, the sales, the policy, the approvals."""

    source: Tenant
    start: dt.date
    end: dt.date
    sales: pd.DataFrame | None = None  # from a file; None: the source tenant's own history
    # The promotion calendar, as the import takes it; None: the source tenant's own calendar
    # when its own sales are replayed, none with sales from a file.
    calendar: pd.DataFrame | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    approve_after_days: int | None = None
    canary: CanaryReplay | None = None  # a canary plan started during the replay


def sandbox_slug(source: Tenant) -> str:
    return f"{source.slug}replay"[:40]


def _crontab_runs(source: Tenant, day: dt.date) -> list[ScheduledRun]:
    """The source tenant's enabled jobs due on `day`, at their local times, in order."""
    from django_celery_beat.models import PeriodicTask

    zone = zoneinfo.ZoneInfo(source.time_zone)
    runs = []
    for job in JOBS:
        task = (
            PeriodicTask.objects.filter(name=periodic_task_name(job=job, tenant=source))
            .select_related("crontab")
            .first()
        )
        if task is None or not task.enabled or task.crontab is None:
            continue
        schedule = task.crontab.schedule
        weekday = day.isoweekday() % 7  # crontab: 0 is Sunday
        if (
            weekday not in schedule.day_of_week
            or day.day not in schedule.day_of_month
            or day.month not in schedule.month_of_year
        ):
            continue
        for hour in sorted(schedule.hour):
            for minute in sorted(schedule.minute):
                at = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=zone)
                runs.append(ScheduledRun(at=at, key=job.key, task=job.task))
    return sorted(runs, key=lambda run: run.at)


def _source_sales(source: Tenant) -> pd.DataFrame:
    from forecasting.selectors import load_sales_panel

    with tenant_context(source):
        frame = load_sales_panel().to_frame()
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    return frame


# The calendar's columns as the import takes them, and the model fields they come from.
_CALENDAR_FIELDS = {
    "store": "store__code",
    "product": "product__sku",
    "department": "department",
    "start_date": "start_date",
    "end_date": "end_date",
    "discount_pct": "discount_pct",
    "price": "price",
    "known_since": "known_since",
}


def _source_calendar(source: Tenant) -> pd.DataFrame:
    from forecasting.models import PlannedPromotion

    with tenant_context(source):
        rows = list(PlannedPromotion.objects.values_list(*_CALENDAR_FIELDS.values()))
    frame = pd.DataFrame(rows, columns=list(_CALENDAR_FIELDS))
    for column in ("store", "product", "department"):
        frame[column] = frame[column].fillna("")  # blank: every store, or the department's
    frame["price"] = pd.to_numeric(frame["price"])
    return frame


class PlanFeed:
    """The promotion calendar fed to the sandbox as it became known: each plan is added once,
    at the first moment of the replay by which it was known and its store and product exist
    there (a product arrives with its first sale), so a forecast sees a plan no earlier than
    the source tenant's forecasts could (`Panel.as_seen_at`)."""

    def __init__(self, calendar: pd.DataFrame) -> None:
        self.calendar = calendar.reset_index(drop=True)
        self.added = np.zeros(len(self.calendar), dtype=bool)
        if self.calendar.empty:
            return
        if "known_since" not in self.calendar:
            raise ValueError("A replayed calendar needs known_since: when each plan was known.")
        self.known = pd.to_datetime(self.calendar["known_since"], utc=True)
        # Blank or `*`: every store (or every product of the row's department).
        self.keys = {
            column: self.calendar.get(column, pd.Series("", index=self.calendar.index))
            .fillna("")
            .astype(str)
            .replace("*", "")
            for column in ("store", "product")
        }

    def add_known_by(self, moment: dt.datetime) -> int:
        from forecasting.models import Product, Store
        from forecasting.services import import_promotion_calendar

        if self.calendar.empty:
            return 0
        due = ~self.added & (self.known <= pd.Timestamp(moment)).to_numpy()
        if not due.any():
            return 0
        stores = set(Store.objects.values_list("code", flat=True)) | {""}
        products = set(Product.objects.values_list("sku", flat=True)) | {""}
        due &= self.keys["store"].isin(stores).to_numpy()
        due &= self.keys["product"].isin(products).to_numpy()
        if due.any():
            _at(moment, lambda: import_promotion_calendar(source=self.calendar[due]))
            self.added |= due
        return int(due.sum())


def _source_recipes(source: Tenant) -> list[dict[str, Any]]:
    """The recipes of the source's champions (global first), else the default recipe; each
    with `serving`, how its champion serves there (None for the default recipe)."""
    with tenant_context(source):
        champions = ModelVersion.objects.filter(status=ModelVersion.Status.CHAMPION).order_by(
            "name", "segment"
        )
        recipes = [
            {
                "name": champion.name,
                "segment": champion.segment,
                "algorithm": champion.algorithm,
                "hyperparameters": dict(champion.hyperparameters),
                "window_days": champion.recipe_window_days,
                "serving": _serving(source, champion),
            }
            for champion in champions
        ]
    recipes.sort(key=lambda recipe: recipe["segment"] != GLOBAL_SEGMENT)
    return recipes or [
        {
            "name": DEFAULT_MODEL_NAME,
            "segment": GLOBAL_SEGMENT,
            "algorithm": None,
            "hyperparameters": None,
            "window_days": None,
            "serving": None,
        }
    ]


def _serving(source: Tenant, champion: ModelVersion) -> str:
    adopted = (
        " (adopted there by override)" if champion.decision_kind == DecisionKind.OVERRIDE else ""
    )
    return f"{champion.version} serves {champion.where} in {source.slug}{adopted}"


def _as_it_serves(serving: str | None) -> Callable[..., RetrainDecision]:
    """The replay start's decision on a source champion's recipe: the gate is asked (its
    held-out metrics become the version's drift baseline, its verdict is kept as evidence), and
    the recipe serves whatever the gate says, because it serves in the source; a gate that
    rejects it is recorded as an override. The default recipe (a source with no champion) is
    decided as any first model."""

    def decide(**arguments: Any) -> RetrainDecision:
        decision = decide_retrain(**arguments)
        if serving is None or decision.action == PROMOTE:
            return decision
        verdict = decision.gate.reason if decision.gate is not None else decision.reason
        return dataclasses.replace(
            decision,
            kind=DecisionKind.OVERRIDE,
            action=PROMOTE,
            reasons=(
                f"Replay start: {serving}, so its recipe serves here although the gate does not "
                f"support it on this history.",
                verdict,
            ),
            evidence={**decision.evidence, "replay_start": True},
            waiting_for="",
            gate=None,
        )

    return decide


def build_sandbox(plan: ReplayPlan) -> Tenant:
    """A fresh sandbox tenant for the replay (an earlier one is dropped), with the source's
    policy and the overrides, its Beat rows disabled, and a manager the replay acts as."""
    from django_celery_beat.models import PeriodicTask

    from tenants.services import provision_tenant

    slug = sandbox_slug(plan.source)
    earlier = Tenant.objects.filter(slug=slug).first()
    if earlier is not None:
        if earlier.replay_of_id not in (plan.source.pk, None) or (
            earlier.replay_of_id is None and not earlier.name.startswith("Replay of ")
        ):
            raise ValueError(f"Tenant {slug!r} exists and is not a replay of {plan.source.slug}.")
        PeriodicTask.objects.filter(name__endswith=f"@{earlier.schema_name}").delete()
        earlier.delete(force_drop=True)
    elif schema_exists(slug):
        raise ValueError(
            f"A schema {slug!r} exists without a tenant; drop it before replaying "
            f"{plan.source.slug} (the sandbox takes that name)."
        )
    shutil.rmtree(Path(settings.MEDIA_ROOT) / slug, ignore_errors=True)
    sandbox = provision_tenant(
        slug=slug,
        name=f"Replay of {plan.source.name}",
        time_zone=plan.source.time_zone,
        admin_password=secrets.token_urlsafe(16),
        verbosity=0,
    ).tenant
    sandbox.replay_of = plan.source
    for name in TenantPolicy.names():
        setattr(sandbox, name, plan.overrides.get(name, getattr(plan.source, name)))
    sandbox.save()
    PeriodicTask.objects.filter(name__endswith=f"@{sandbox.schema_name}").update(enabled=False)
    with tenant_context(sandbox):
        user, _ = get_user_model().objects.get_or_create(
            username=REPLAY_USER,
            defaults={"email": f"{REPLAY_USER}@{slug}.invalid", "is_staff": True},
        )
        user.groups.add(Group.objects.get(name=ML_MANAGER))
    return sandbox


@contextmanager
def _in_process() -> Iterator[None]:
    """Celery tasks run in this process at once; emails go to an in-memory outbox."""
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            yield
    finally:
        app.conf.task_always_eager = eager


def _at(moment: dt.datetime, action: Callable[[], Any]) -> Any:
    with time_machine.travel(moment, tick=True):
        return action()


def _import_day(frame: pd.DataFrame, day: dt.date, zone: zoneinfo.ZoneInfo) -> int:
    from forecasting.services import import_sales

    rows = frame[frame["date"] == day]
    if rows.empty:
        return 0
    # The day's sales arrive in the evening, after its business.
    evening = dt.datetime.combine(day, dt.time(22, 0), tzinfo=zone)
    _at(evening, lambda: import_sales(source=rows))
    return len(rows)


def _bootstrap(
    plan: ReplayPlan, sandbox: Tenant, sales: pd.DataFrame, plans: PlanFeed
) -> list[ModelVersion]:
    """The history before the first day, the plans known by then, and the source's champion
    recipes trained on it."""
    from forecasting.services import import_sales
    from mlops.services.retraining import retrain_forecast_model

    zone = zoneinfo.ZoneInfo(sandbox.time_zone)
    eve = dt.datetime.combine(plan.start - dt.timedelta(days=1), dt.time(23, 0), tzinfo=zone)
    history = sales[sales["date"] < plan.start]
    if history.empty:
        raise ValueError(f"There are no sales before {plan.start} to train the first models on.")
    champions = []
    with tenant_context(sandbox):
        _at(eve, lambda: import_sales(source=history))
        plans.add_known_by(eve)
        for recipe in _source_recipes(plan.source):
            serving = recipe.pop("serving")
            log = _at(
                eve,
                lambda recipe=recipe, serving=serving: retrain_forecast_model(
                    trigger=Trigger.MANUAL, decide=_as_it_serves(serving), **recipe
                ),
            )
            version = log.resulting_version
            if version is not None:
                version.refresh_from_db()
            if version is None or version.status != ModelVersion.Status.CHAMPION:
                raise RuntimeError(
                    f"The replay could not start: the first {recipe['segment']} model "
                    f"{'failed' if version is None else 'was not made champion'}: "
                    f"{log.error or log.decision.get('reasons')}"
                )
            champions.append(version)
    return champions


def run_replay(
    plan: ReplayPlan, *, progress: Callable[[list[dt.date]], Iterator[dt.date]] | None = None
) -> dict[str, Any]:
    """Replay `plan` in a fresh sandbox and return the report (see `replay_report`)."""
    from alerts.services import act_on_alert  # noqa: F401  (the approvals act through it)
    from mlops.services.replay_report import ReplayRecorder

    started = time.perf_counter()
    app.loader.import_default_modules()  # the jobs' tasks, by name
    if plan.end < plan.start:
        raise ValueError("The replay's end is before its start.")
    canary = _prepared_canary(plan)
    sales = plan.sales if plan.sales is not None else _source_sales(plan.source)
    sales = sales.assign(date=pd.to_datetime(sales["date"]).dt.date)
    calendar = plan.calendar
    if calendar is None:
        calendar = _source_calendar(plan.source) if plan.sales is None else pd.DataFrame()
    plans = PlanFeed(calendar)
    with _in_process():
        sandbox = build_sandbox(plan)
        _bootstrap(plan, sandbox, sales, plans)
        zone = zoneinfo.ZoneInfo(sandbox.time_zone)
        days = [plan.start + dt.timedelta(days=n) for n in range((plan.end - plan.start).days + 1)]
        with tenant_context(sandbox):
            recorder = ReplayRecorder(sandbox=sandbox, plan=plan)
            _run_morning(plan.source, plan.start, recorder)
            for day in progress(days) if progress else days:
                if canary is not None and day == canary.day:
                    # Started at noon, after the morning's jobs, as a manager would.
                    _at(
                        dt.datetime.combine(day, dt.time(12, 0), tzinfo=zone),
                        lambda: start_replayed_canary(prepared=canary, actor=recorder.user),
                    )
                _import_day(sales, day, zone)
                # The plans made during the day, before the next morning's forecast.
                plans.add_known_by(
                    dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone)
                )
                _run_morning(plan.source, day + dt.timedelta(days=1), recorder)
                recorder.close_day(day)
            report = recorder.report(wall_seconds=time.perf_counter() - started)
    return report


def _prepared_canary(plan: ReplayPlan) -> PreparedCanary | None:
    """The plan's canary checked against the source tenant (ValueError if it cannot run)."""
    if plan.canary is None:
        return None
    return prepare_canary(
        source=plan.source,
        canary=plan.canary,
        first_day=plan.start,
        last_day=plan.end,
        served_names={recipe["name"] for recipe in _source_recipes(plan.source)},
    )


def _run_morning(source: Tenant, day: dt.date, recorder: Any) -> None:
    """Every job due on `day`, at its time, then the approvals a person would give."""
    for run in _crontab_runs(source, day):
        result = _at(run.at, lambda run=run: app.tasks[run.task].apply(throw=True).result)
        recorder.job_ran(day=day, key=run.key, result=result)
    recorder.approve_waiting(day=day)
