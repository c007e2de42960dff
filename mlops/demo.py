"""The demo story: two years of generated sales, a first champion, and the specification's three
scenarios played with real computation (`manage.py demo`, run by `make demo`).

Timeline, with D the last day of sales (yesterday):
- sales up to D-35 are loaded; a seasonal-naive baseline becomes the first champion and is
  backtested over 90 days;
- scenario 1: the Sunday retrain trains XGBoost, which clears the promotion gate on its own;
- scenario 3: a department-tiered experiment is proposed, approved, trained and shadow-tested
  while the days D-34 .. D-15 arrive one by one, then completed with Electronics adopted;
- scenario 2: from D-13 on, 30% of the series sell 40% more; the daily T-1 backtests catch it,
  a critical drift alert goes out by email, an emergency retrain produces a challenger, and a
  `promotion_pending` alert waits for a person.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from config.console import Console
from tenants.roles import DATA_SCIENTIST, ML_MANAGER, VIEWER

SHADOW_DAYS = 20  # D-34 .. D-15
QUIET_DAYS = 1  # D-14: a day without drift between the experiment and the shift
DRIFT_DAYS = 14  # D-13 .. D


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


def play(*, size: DemoSize, password: str, narrator: Console, seed: int = 42) -> dict:
    """Generate the data and play the three scenarios in the current (demo) tenant."""
    from alerts.models import MLAlert
    from experiments import services as experiments
    from experiments.selectors import experiment_results
    from forecasting.services import import_sales
    from forecasting.synthetic import generate_sales
    from mlops import services as mlops
    from mlops.models import ModelRetrainingLog, ModelVersion, Trigger
    from mlops.selectors import get_champion_model
    from mlops.tasks import queue_walk_forward, retrain_model

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
    with narrator.step(f"importing history up to {history_end} (validated, one COPY)"):
        summary = import_sales(source=_days(sales, dt.date.min, history_end))
    narrator.say(
        f"    {summary.rows:,} rows, {summary.series:,} series, "
        f"{summary.date_min} .. {summary.date_max}, {summary.rows / summary.seconds:,.0f} rows/s"
    )

    # -- the first champion -------------------------------------------------------------------
    narrator.heading("Day one: a baseline champion")
    with narrator.step("training v1, a seasonal-naive baseline"):
        first = mlops.retrain_forecast_model(
            trigger=Trigger.MANUAL, algorithm="seasonal_naive", requested_by=users["dan"]
        )
    v1 = _trained(first)
    with narrator.step("90-day walk-forward backtest of v1 (13 weekly windows)"):
        windows = mlops.run_continuous_backtest(version=v1)
    maes = [w.mae for w in windows if w.mae is not None]
    narrator.say(
        f"    v1 is champion ({first.outcome}); walk-forward MAE {_fmt(sum(maes) / len(maes))} "
        f"over {len(windows)} windows"
    )

    # -- scenario 1 ---------------------------------------------------------------------------
    narrator.heading("Scenario 1 — Sunday 02:00, the scheduled retrain (no human step)")
    with narrator.step("retraining with XGBoost and judging it against v1 on the same windows"):
        scheduled = mlops.retrain_forecast_model(
            trigger=Trigger.SCHEDULED, algorithm="xgboost", requested_by=None
        )
    v2 = _trained(scheduled)
    v2.refresh_from_db()
    evaluation = v2.last_evaluation or {}
    improvement = evaluation.get("improvement", {})
    narrator.say(
        f"    {v2.version}: {scheduled.outcome}. MAE {_fmt(improvement.get('mae_pct'), 1, '%')} "
        f"better, MAPE {_fmt(improvement.get('mape_pct'), 1, '%')} better, "
        f"confidence {_fmt((evaluation.get('test') or {}).get('confidence'), 3)} over "
        f"{evaluation.get('n_series', '?')} series (gate: >= "
        f"{evaluation.get('thresholds', {}).get('min_improvement_pct')}% on both, confidence >= "
        f"{evaluation.get('thresholds', {}).get('min_confidence')})"
    )
    # Sunday 04:00's job: the worker walks v2 forward once the platform runs (13 refits).
    queue_walk_forward(v2.pk)
    narrator.say(
        f"    queued the 90-day walk-forward backtest of {v2.version}; the worker draws its chart "
        "a few minutes after the platform starts"
    )

    # -- scenario 3 ---------------------------------------------------------------------------
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

    def replay(first_day: dt.date, last: dt.date, *, label: str, detect: bool) -> list:
        days = pd.date_range(first_day, last).date
        findings = []
        mlops.forecast_next_days(day=first_day)
        for day in narrator.progress(days, total=len(days), label=label):
            import_sales(source=_days(sales, day, day))
            mlops.backtest_yesterday(day=day)
            if detect:
                findings.extend(
                    (day, result) for result in mlops.detect_drift_for_champions(as_of=day)
                )
            mlops.forecast_next_days(day=day + dt.timedelta(days=1))
        return findings

    replay(
        shadow_start,
        drift_start - dt.timedelta(days=1),
        label="days arrive: import, T-1 backtest, forecast",
        detect=True,
    )
    results = experiment_results(experiment=experiment)
    segments = results.get("segments") or {}
    for segment, numbers in sorted(segments.items()):
        improvement = numbers.get("improvement_pct") or {}
        narrator.say(
            f"    {segment}: MAE {_fmt((numbers.get('experimental') or {}).get('mae'))} vs "
            f"champion {_fmt((numbers.get('baseline') or {}).get('mae'))} "
            f"({_fmt(improvement.get('mae'), 1, '%')} better, {numbers.get('n_points', 0)} "
            f"points from {numbers.get('source', '?')}; meets the 12% target: "
            f"{'yes' if numbers.get('meets_success_criterion') else 'no'})"
        )
    electronics = [
        v for v in experiment.model_versions.all() if v.segment == "department:Electronics"
    ]
    gain = ((segments.get("department:Electronics") or {}).get("improvement_pct") or {}).get("mae")
    experiments.complete_experiment(
        experiment=experiment,
        actor=users["maria"],
        decision="partial_adopt",
        rationale=f"Electronics behaves differently: its dedicated model's MAE is "
        f"{_fmt(gain, 1, '%')} lower than the global champion's in shadow. Adopting the "
        "Electronics tier only; Grocery and Apparel stay on the global model.",
        adopted_versions=electronics,
    )
    electronics_champion = get_champion_model(segment="department:Electronics")
    narrator.say(
        f"    completed: partial adoption — {getattr(electronics_champion, 'version', 'n/a')} "
        "now serves Electronics; the rest archived; an experiment_complete alert is in the inbox"
    )

    # -- scenario 2 ---------------------------------------------------------------------------
    narrator.heading(f"Scenario 2 — from {drift_start}, 30% of the series sell 40% more")
    findings = replay(
        drift_start - dt.timedelta(days=QUIET_DAYS),
        last_day,
        label="days arrive: import, T-1 backtest, drift check, forecast",
        detect=True,
    )
    first_drift: dict[str, tuple] = {}
    for day, result in findings:
        if result.status == "drift":
            first_drift.setdefault(result.segment, (day, result))
    if not first_drift:
        narrator.say("    no drift found in these days")
    for segment, (day, result) in sorted(first_drift.items()):
        offset = (day - drift_start).days + 1
        when = f"day {offset} of the shift"
        if offset < 1:
            when = "before the injected shift"
            if result.recent_bias is not None:
                side = "below" if result.recent_bias < 0 else "above"
                when += (
                    f": over the last week its forecasts ran {abs(result.recent_bias):.0f}% "
                    f"{side} demand"
                )
        narrator.say(
            f"    drift on {result.name} [{segment}] ({result.champion_version}) found on {day}, "
            f"{when}; baseline MAE "
            f"{_fmt(result.baseline_mae)}, recent {_fmt(result.recent_mae)} "
            f"({_fmt(result.drift_pct, 1, '%')}; rules: {', '.join(result.rules)})"
        )
    for alert in MLAlert.objects.filter(alert_type=MLAlert.AlertType.DRIFT_DETECTED):
        narrator.say(f"    critical alert: “{alert.title}” — queued for email to the ml_managers")
    queued = ModelRetrainingLog.objects.filter(
        trigger=Trigger.DRIFT_DETECTED, status=ModelRetrainingLog.Status.QUEUED
    ).order_by("pk")
    for emergency in queued:
        with narrator.step(
            f"emergency retrain of [{emergency.segment}] on the recent window "
            "(trigger drift_detected)"
        ):
            retrain_model.apply(args=[emergency.pk])
    challengers = ModelVersion.objects.filter(
        status=ModelVersion.Status.CHALLENGER, trigger=Trigger.DRIFT_DETECTED
    )
    for challenger in challengers:
        pending = MLAlert.objects.filter(
            alert_type=MLAlert.AlertType.PROMOTION_PENDING, model_version=challenger
        ).first()
        narrator.say(
            f"    {challenger.version} [{challenger.segment}] is challenger and waits for a person"
            + (f" — alert “{pending.title}”" if pending else "")
        )
        queue_walk_forward(challenger.pk)  # its review chart, drawn by the worker
    challenger = challengers.first()

    champion = get_champion_model()
    return {
        "champion": champion,
        "challenger": challenger,
        "experiment": experiment,
        "versions": ModelVersion.objects.count(),
        "alerts": MLAlert.objects.count(),
    }
