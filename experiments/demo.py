"""The demo story: two years of generated sales, a first champion, and the specification's three
scenarios played with real computation (`manage.py demo`, run by `make demo`).

Timeline, with D the last day of sales (yesterday):
- sales up to D-35 are loaded; a seasonal-naive baseline becomes the first champion and is
  backtested over 90 days;
- scenario 1: the Sunday retrain trains XGBoost (a recipe change), which clears the promotion
  gate on its own;
- scenario 3: a department-tiered experiment is proposed, approved, trained and shadow-tested
  while the days D-34 .. D-15 arrive one by one, then completed: the departments whose models
  pass the gate are adopted, and the demo says which did not and why;
- scenario 2: from D-13 on, 30% of the series sell 40% more; the daily T-1 backtests catch it,
  one drift incident opens with one critical email, an emergency retrain of the champion's
  recipe on the new sales is judged every day against the drifted champion on the days after
  the change, and the alert says what the numbers recommend.

Every replayed day runs what the schedules run: the morning forecast, the T-1 backtest with the
daily judging of every challenger, the drift check (an emergency retrain it queues runs at once,
as a worker would), and on Sundays the weekly refresh of every champion.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from config.console import Console
from forecasting.metrics import better_or_worse
from tenants.roles import DATA_SCIENTIST, ML_MANAGER, VIEWER

SHADOW_DAYS = 20  # D-34 .. D-15
QUIET_DAYS = 1  # D-14: a day without drift between the experiment and the shift
DRIFT_DAYS = 14  # D-13 .. D
STOCKOUT_SERIES_SHARE = 0.15  # series whose shelf runs empty now and then


@dataclass(frozen=True)
class DemoSize:
    stores: int
    products: int
    days: int

    @property
    def series(self) -> int:
        return self.stores * self.products


DEFAULT_SIZE = DemoSize(stores=20, products=50, days=730)  # 1,000 series x 2 years
QUICK_SIZE = DemoSize(stores=6, products=20, days=420)  # 120 series, for a fast look


def ensure_demo_users(*, password: str) -> dict[str, object]:
    """The people of the story: a manager, a data scientist and a viewer (plus the admin)."""
    user_model = get_user_model()
    people = {
        "maria": ("Maria", "Manager", ML_MANAGER),
        "dan": ("Dan", "Scientist", DATA_SCIENTIST),
        "vera": ("Vera", "Viewer", VIEWER),
    }
    users = {}
    for username, (first, last, role) in people.items():
        user, created = user_model.objects.get_or_create(
            username=username,
            defaults={
                "first_name": first,
                "last_name": last,
                "email": f"{username}@demo-retail.example",
                "is_staff": True,
            },
        )
        if created:
            user.set_password(password)
            user.save()
        user.groups.add(Group.objects.get(name=role))
        users[username] = user
    admin = user_model.objects.get(username="admin")
    admin.groups.add(Group.objects.get(name=ML_MANAGER))  # the admin receives the alert emails
    users["admin"] = admin
    return users


def _days(frame: pd.DataFrame, first: dt.date, last: dt.date) -> pd.DataFrame:
    dates = pd.to_datetime(frame["date"]).dt.date
    return frame[(dates >= first) & (dates <= last)]


def _fmt(value, digits: int = 2, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{suffix}"


def _trained(log):
    """The version a retrain produced; a failed retrain stops the demo with its error."""
    if log.resulting_version is None:
        raise RuntimeError(f"Retrain {log.pk} ({log.trigger}) failed: {log.error}")
    return log.resulting_version


@dataclass
class Story:
    """What the scenarios share: the people, the generated sales and the demo's days."""

    users: dict[str, object]
    sales: pd.DataFrame
    last_day: dt.date
    drift_start: dt.date
    shadow_start: dt.date
    narrator: Console
    events: list[str]


def play(*, size: DemoSize, password: str, narrator: Console, seed: int = 42) -> dict:
    """Generate the data and play the three scenarios in the current (demo) tenant."""
    from alerts.models import MLAlert
    from mlops.models import ModelVersion
    from mlops.selectors import get_champion_model

    story = _load_history(size=size, password=password, narrator=narrator, seed=seed)
    _first_champion(story)
    _scheduled_retrain(story)
    experiment = _experiment(story)
    challenger = _drift(story)
    return {
        "champion": get_champion_model(),
        "challenger": challenger,
        "experiment": experiment,
        "versions": ModelVersion.objects.count(),
        "alerts": MLAlert.objects.count(),
    }


def _load_history(*, size: DemoSize, password: str, narrator: Console, seed: int) -> Story:
    from forecasting.services import import_promotion_calendar, import_sales
    from forecasting.synthetic import generate_sales, promotion_calendar_of, with_stockouts

    users = ensure_demo_users(password=password)
    last_day = dt.date.today() - dt.timedelta(days=1)
    drift_start = last_day - dt.timedelta(days=DRIFT_DAYS - 1)
    shadow_start = drift_start - dt.timedelta(days=QUIET_DAYS + SHADOW_DAYS)
    history_end = shadow_start - dt.timedelta(days=1)
    narrator.heading(
        f"Data: {size.series:,} series ({size.stores} stores x {size.products} products) "
        f"x {size.days} days, ending {last_day}"
    )
    with narrator.step("generating daily demand (seasonality, promotions, three departments)"):
        sales = generate_sales(
            stores=size.stores,
            products=size.products,
            days=size.days,
            seed=seed,
            end_date=last_day,
            drift_date=drift_start,
            drift_fraction=0.3,
            drift_size=0.4,
        )
        # The retailer's promotion calendar (each plan with the day it was known) and the
        # shelves that ran empty now and then on some series.
        calendar = promotion_calendar_of(sales, seed=seed)
        sales = with_stockouts(sales, share=STOCKOUT_SERIES_SHARE, seed=seed)
    with narrator.step(f"importing history up to {history_end} (validated, one COPY)"):
        summary = import_sales(source=_days(sales, dt.date.min, history_end))
        import_promotion_calendar(source=calendar)
    narrator.say(
        f"    {summary.rows:,} rows, {summary.series:,} series, "
        f"{summary.date_min} .. {summary.date_max}, {summary.rows / summary.seconds:,.0f} rows/s"
    )
    return Story(
        users=users,
        sales=sales,
        last_day=last_day,
        drift_start=drift_start,
        shadow_start=shadow_start,
        narrator=narrator,
        events=[],
    )


def _first_champion(story: Story) -> None:
    from mlops import services as mlops
    from mlops.models import Trigger

    narrator = story.narrator
    narrator.heading("Day one: a baseline champion")
    with narrator.step("training v1, a seasonal-naive baseline"):
        first = mlops.retrain_forecast_model(
            trigger=Trigger.MANUAL, algorithm="seasonal_naive", requested_by=story.users["dan"]
        )
    v1 = _trained(first)
    with narrator.step("90-day walk-forward backtest of v1 (13 weekly windows)"):
        windows = mlops.run_continuous_backtest(version=v1)
    maes = [w.mae for w in windows if w.mae is not None]
    narrator.say(
        f"    v1 is champion ({first.outcome}); walk-forward MAE {_fmt(sum(maes) / len(maes))} "
        f"over {len(windows)} windows"
    )


def _scheduled_retrain(story: Story) -> None:
    from mlops import services as mlops
    from mlops.models import Trigger
    from mlops.tasks import queue_walk_forward

    narrator = story.narrator
    narrator.heading("Scenario 1 — Sunday 02:00, the scheduled retrain (no human step)")
    with narrator.step("retraining with XGBoost and judging it against v1 on the same windows"):
        scheduled = mlops.retrain_forecast_model(
            trigger=Trigger.SCHEDULED, algorithm="xgboost", requested_by=None
        )
    v2 = _trained(scheduled)
    v2.refresh_from_db()
    evaluation = v2.last_evaluation or {}
    improvement = evaluation.get("improvement", {})
    thresholds = evaluation.get("thresholds", {})
    narrator.say(
        f"    {v2.version}: a recipe change (seasonal naive to XGBoost), {scheduled.outcome}. "
        f"MAE {better_or_worse(improvement.get('mae_pct'))}, MAPE "
        f"{better_or_worse(improvement.get('mape_pct'))}, confidence "
        f"{_fmt((evaluation.get('test') or {}).get('confidence'), 3)} over "
        f"{evaluation.get('n_series', '?')} series (gate: each >= "
        f"{thresholds.get('min_improvement_pct')}% better, confidence >= "
        f"{thresholds.get('min_confidence')})"
    )
    # Sunday 04:00's job: the worker walks v2 forward once the platform runs (13 refits).
    queue_walk_forward(v2.pk)
    narrator.say(
        f"    queued the 90-day walk-forward backtest of {v2.version}; the worker draws its chart "
        "a few minutes after the platform starts"
    )
    narrator.say(
        "    from now on the Sunday retrain refreshes the champion: its own recipe on the new "
        "week, which replaces it unless it is worse than what it served"
    )


def operate(story: Story, first_day: dt.date, last: dt.date, *, label: str) -> list:
    """The days from `first_day` to `last` as the schedules run them: each morning's forecast,
    the day's sales, its T-1 backtest and the daily judging, the drift check (its emergency
    retrain runs at once, as a worker would), and on Sundays the weekly refresh. Returns the
    drift checks' (day, result) pairs."""
    from forecasting.services import import_sales
    from mlops import services as mlops
    from mlops.models import ModelRetrainingLog
    from mlops.services.judging import judge_waiting_versions
    from mlops.services.retraining import run_queued_retrain

    days = pd.date_range(first_day, last).date
    findings = []
    mlops.forecast_next_days(day=first_day)
    for day in story.narrator.progress(days, total=len(days), label=label):
        import_sales(source=_days(story.sales, day, day))
        mlops.backtest_yesterday(day=day)
        judge_waiting_versions(day=day)
        findings.extend((day, result) for result in mlops.detect_drift_for_champions(as_of=day))
        tomorrow = day + dt.timedelta(days=1)
        if tomorrow.isoweekday() == 7:
            mlops.queue_scheduled_retrains()
        for log in ModelRetrainingLog.objects.filter(status=ModelRetrainingLog.Status.QUEUED):
            done = run_queued_retrain(log_id=log.pk).log
            story.events.append(_retrain_event(day=day, log=done))
        mlops.forecast_next_days(day=tomorrow)
    return findings


def _retrain_event(*, day: dt.date, log) -> str:
    version = log.resulting_version.version if log.resulting_version_id else "nothing"
    kind = (log.decision_kind or "failed").replace("_", " ")
    reason = (log.decision or {}).get("reason") or (log.error.splitlines() or [""])[0]
    return (
        f"{day}: {log.get_trigger_display().lower()} retrain of [{log.segment}] ({kind}) made "
        f"{version}, {log.outcome or log.status}. {reason[:240]}"
    )


def _experiment(story: Story):
    from experiments import services as experiments
    from experiments.selectors import experiment_results
    from mlops.selectors import get_champion_model

    narrator, users = story.narrator, story.users
    narrator.heading("Scenario 3 — a department-tiered experiment")
    experiment = experiments.propose_experiment(
        actor=users["dan"],
        name="Department-Tiered Forecasting",
        hypothesis="Electronics demand differs from Grocery. A dedicated model per department "
        "will improve MAE by 12%.",
        experiment_type="segmentation",
        configuration={"segments": ["Electronics", "Grocery", "Apparel"], "algorithm": "xgboost"},
        expected_improvement_pct=12.0,
    )
    narrator.say(f"    proposed by dan: “{experiment.name}” ({experiment.status})")
    experiments.approve_experiment(
        experiment=experiment, actor=users["maria"], note="Worth a shadow test."
    )
    narrator.say(f"    approved by maria ({experiment.status})")
    with narrator.step("training one model per department"):
        experiments.start_experiment(experiment=experiment, actor=users["dan"])
    experiments.start_shadow_testing(experiment=experiment, actor=users["dan"])
    labels = ", ".join(f"{v.version} [{v.segment}]" for v in experiment.model_versions.all())
    narrator.say(f"    trained {labels}; now shadow-testing ({experiment.status})")
    operate(
        story,
        story.shadow_start,
        story.drift_start - dt.timedelta(days=QUIET_DAYS + 1),
        label="days arrive: forecast, sales, T-1 and judging, drift check, Sunday refresh",
    )
    _tell_events(story)
    segments = experiment_results(experiment=experiment).get("segments") or {}
    passing, failing = [], {}
    for segment, numbers in sorted(segments.items()):
        improvement = (numbers.get("improvement_pct") or {}).get("mae")
        confidence = (numbers.get("paired_test") or {}).get("confidence") or 0.0
        missed = experiments.adoption_gate(experiment=experiment, result=numbers)
        narrator.say(
            f"    {segment}: MAE {_fmt((numbers.get('experimental') or {}).get('mae'))} against "
            f"the champion's {_fmt((numbers.get('baseline') or {}).get('mae'))}, "
            f"{better_or_worse(improvement)}, confidence {confidence:.3f}, "
            f"{numbers.get('n_points', 0):,} points ({numbers.get('source', '?')}); "
            + ("passes the gate" if not missed else "does not pass: " + "; ".join(missed))
        )
        if missed:
            failing[segment] = missed
        else:
            passing.append(segment)
    adopt = passing or ["department:Electronics"]
    versions = [v for v in experiment.model_versions.all() if v.segment in adopt]
    override = (
        ""
        if passing
        else (
            "Electronics planners review one model of their own each week; we accept its gate miss "
            "for that and will revisit after a month of serving."
        )
    )
    experiments.complete_experiment(
        experiment=experiment,
        actor=users["maria"],
        decision="adopt" if len(versions) == len(segments) else "partial_adopt",
        rationale="Adopting the department models that pass the gate."
        if passing
        else "No department model passes the gate; Electronics is adopted as an override.",
        adopted_versions=versions,
        override_reason=override,
    )
    served = ", ".join(
        f"{getattr(get_champion_model(segment=segment), 'version', 'n/a')} [{segment}]"
        for segment in adopt
    )
    how = "on the evidence" if passing else "as a recorded override, against the gate"
    narrator.say(
        f"    completed by maria: {served} now serve {how}; the rest archived; an "
        "experiment_complete alert is in the inbox"
    )
    return experiment


def _tell_events(story: Story) -> None:
    for event in story.events:
        story.narrator.say(f"    {event}")
    story.events.clear()


def _drift(story: Story):
    from alerts.models import MLAlert
    from mlops.models import DriftIncident
    from mlops.tasks import queue_walk_forward

    narrator = story.narrator
    narrator.heading(f"Scenario 2 — from {story.drift_start}, 30% of the series sell 40% more")
    findings = operate(
        story,
        story.drift_start - dt.timedelta(days=QUIET_DAYS),
        story.last_day,
        label="days arrive: forecast, sales, T-1 and judging, drift check, Sunday refresh",
    )
    first_drift: dict[str, tuple] = {}
    for day, result in findings:
        if result.incident_opened:
            first_drift.setdefault(result.segment, (day, result))
    if not first_drift:
        narrator.say("    no drift found in these days")
    for segment, (day, result) in sorted(first_drift.items()):
        offset = (day - story.drift_start).days + 1
        when = f"day {offset} of the shift" if offset >= 1 else "before the injected shift"
        narrator.say(
            f"    drift incident on {result.name} [{segment}] ({result.champion_version}) opened "
            f"on {day}, {when}, change dated {result.change_date}; rules: "
            f"{', '.join(result.rules)}; its forecasts ran "
            f"{abs(result.recent_bias or 0):.0f}% {'below' if (result.recent_bias or 0) < 0 else 'above'} "
            "demand over the last week"
        )
    _tell_events(story)
    emails = MLAlert.objects.filter(
        alert_type=MLAlert.AlertType.DRIFT_DETECTED, severity=MLAlert.Severity.CRITICAL
    ).count()
    narrator.say(f"    {emails} critical drift alert(s), each emailed once to the ml_managers")
    challenger = None
    for incident in DriftIncident.objects.select_related("challenger", "champion").order_by("pk"):
        state = (
            "open"
            if incident.status == DriftIncident.Status.OPEN
            else f"resolved ({incident.get_resolution_display().lower()})"
        )
        narrator.say(f"    incident #{incident.pk} [{incident.segment}]: {state}")
        if incident.challenger is None:
            continue
        challenger = challenger or incident.challenger
        evaluation = incident.challenger.last_evaluation or {}
        narrator.say(
            f"      {incident.challenger.version}: {evaluation.get('reason', 'not judged yet')}"
        )
        queue_walk_forward(incident.challenger.pk)  # its review chart, drawn by the worker
    return challenger
