"""Canary rollouts: start a plan, choose its sticky stratified series, and move it (a person's
pause, resume, abort or skip; the daily judging's next step, promotion or rollback)."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Max
from django_fsm import TransitionNotAllowed

from config.transitions import apply_transition, ensure_can, locked
from forecasting.models import Product, Sale, SeriesDemandClass, Store
from mlops.models import (
    DecisionKind,
    ModelVersion,
    RolloutEvent,
    RolloutPlan,
    RolloutSeries,
    Trigger,
    validate_plan,
)
from mlops.rollout_selectors import canary_series_by_department
from mlops.selectors import get_champion_model, incumbent_for
from mlops.services.lifecycle import (
    SERVE_PERMISSION,
    configure_routing,
    lock_group,
    make_challenger,
    promote_to_champion,
    require_permission,
)
from mlops.services.rollout_guardrails import DEFAULT_GUARDRAILS
from mlops.services.routing import covers, serving_segment, takes_over, traffic_bucket
from tenants.roles import actor_label
from tenants.selectors import tenant_policy, tenant_today

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

Status = RolloutPlan.Status
EventKind = RolloutEvent.Kind
RoutingMode = ModelVersion.RoutingMode
ACTIVE_SERIES_DAYS = 28
UNCLASSIFIED = "unclassified"
# What a person may do to a running or paused plan, and the event each leaves.
MANAGER_ACTIONS = ("pause", "resume", "abort", "skip")
_EVENT = {"pause": EventKind.PAUSED, "resume": EventKind.RESUMED, "abort": EventKind.ABORTED}


def describe(plan: RolloutPlan) -> str:
    return f"the canary of {plan.name} {plan.version.version}"


def record(
    plan: RolloutPlan,
    *,
    kind: str,
    from_status: str,
    actor: AbstractBaseUser | None,
    reason: str,
    evidence: dict[str, Any] | None = None,
    day: dt.date | None = None,
) -> RolloutEvent:
    """One row of the plan's audit log."""
    return RolloutEvent.objects.create(
        plan=plan,
        kind=kind,
        from_status=from_status,
        to_status=plan.status,
        step=plan.step,
        share=plan.share,
        day=day,
        actor=actor,
        actor_label=actor_label(actor),
        reason=reason,
        evidence=evidence or {},
    )


def move(
    plan: RolloutPlan,
    method_name: str,
    *,
    kind: str,
    actor: AbstractBaseUser | None,
    reason: str,
    evidence: dict[str, Any] | None = None,
    day: dt.date | None = None,
    **fields: Any,
) -> RolloutPlan:
    """Run one transition of a locked, fresh plan through the shared helper, with its event."""
    return apply_transition(
        plan,
        method_name,
        actor=actor,
        action=method_name.replace("_", " "),
        describe=describe(plan),
        audit=lambda from_status: record(
            plan,
            kind=kind,
            from_status=from_status,
            actor=actor,
            reason=reason,
            evidence=evidence,
            day=day,
        ),
        check_permission=True,
        **fields,
    )


# -- which series are in the canary ---------------------------------------------------------------


def eligible_series(version: ModelVersion, *, on: dt.date) -> list[tuple[int, int, str, str]]:
    """The active series (sold in the 28 days up to the latest sales day before `on`) that the
    version would serve once promoted: its segment covers them and no champion of a segment
    routing puts before it serves them (store id, product id, department, demand class)."""
    latest = Sale.objects.filter(date__lt=on).aggregate(latest=Max("date"))["latest"]
    if latest is None:
        return []
    rows = (
        Sale.objects.filter(
            date__gt=latest - dt.timedelta(days=ACTIVE_SERIES_DAYS),
            date__lte=latest,
            quantity__gt=0,
        )
        .values_list("store_id", "product_id", "product__department")
        .distinct()
    )
    classes = {
        (store, product): demand_class
        for store, product, demand_class in SeriesDemandClass.objects.values_list(
            "store_id", "product_id", "demand_class"
        )
    }
    champions = set(
        ModelVersion.objects.filter(name=version.name, status=ModelVersion.Status.CHAMPION)
        .exclude(pk=version.pk)
        .values_list("segment", flat=True)
    )
    series = []
    for store, product, department in rows:
        demand_class = classes.get((store, product))
        serving = serving_segment(champions, department, demand_class)
        if covers(version, department, demand_class) and takes_over(version, serving):
            series.append((store, product, department, demand_class or UNCLASSIFIED))
    return sorted(series)


def _largest_remainder(total: int, sizes: dict[str, int]) -> dict[str, int]:
    """`total` split over groups in proportion to their sizes (Hamilton's method)."""
    whole = sum(sizes.values())
    exact = {key: total * size / whole for key, size in sizes.items()}
    quotas = {key: math.floor(value) for key, value in exact.items()}
    short = total - sum(quotas.values())
    for key in sorted(exact, key=lambda k: (quotas[k] - exact[k], k))[:short]:
        quotas[key] += 1
    return quotas


def stratified_choice(
    series: Iterable[tuple[int, int, str, str]],
    *,
    share: float,
    chosen: set[tuple[int, int]],
    salt: str,
    codes: dict[tuple[int, int], tuple[str, str]],
) -> set[tuple[int, int]]:
    """The canary's series at `share`: in every department the ceiling of `share` of its series,
    split over its demand classes in proportion, each class's first by a fixed hash of the
    series' store and product codes (`salt` names the plan: the same plan of the same catalogue
    picks the same series, whatever ids the rows got); `chosen` (the earlier steps' series)
    always stay in."""
    departments: dict[str, list[tuple[int, int, str, str]]] = defaultdict(list)
    for each in series:
        departments[each[2]].append(each)
    result = set(chosen)

    def order(item: tuple[int, int, str, str]) -> float:
        store, product = codes[(item[0], item[1])]
        return traffic_bucket(name=salt, store_id=store, product_id=product)

    for members in departments.values():
        target = math.ceil(share * len(members) - 1e-9)
        classes: dict[str, list] = defaultdict(list)
        for each in members:
            classes[each[3]].append(each)
        quotas = _largest_remainder(target, {key: len(items) for key, items in classes.items()})
        for key, items in classes.items():
            ranked = sorted(items, key=order)
            have = sum((s, p) in result for s, p, _, _ in ranked)
            for store, product, _, _ in ranked:
                if have >= quotas[key]:
                    break
                if (store, product) not in result:
                    result.add((store, product))
                    have += 1
        # Earlier steps' series may sit unevenly: top the department up by the same order.
        have = sum((s, p) in result for s, p, _, _ in members)
        for store, product, _, _ in sorted(members, key=order):
            if have >= target:
                break
            if (store, product) not in result:
                result.add((store, product))
                have += 1
    return result


def _series_codes(
    series: list[tuple[int, int, str, str]],
) -> dict[tuple[int, int], tuple[str, str]]:
    stores = dict(Store.objects.values_list("pk", "code"))
    products = dict(Product.objects.values_list("pk", "sku"))
    return {(store, product): (stores[store], products[product]) for store, product, _, _ in series}


def grow_series(plan: RolloutPlan, *, on: dt.date) -> int:
    """Add series to the plan until each department holds its step's share; returns how many."""
    series = eligible_series(plan.version, on=on)
    chosen = set(plan.series.values_list("store_id", "product_id"))
    wanted = stratified_choice(
        series,
        share=plan.share,
        chosen=chosen,
        salt=f"{plan.name}:{plan.version.version}",
        codes=_series_codes(series),
    )
    details = {(s, p): (d, c) for s, p, d, c in series}
    new = [
        RolloutSeries(
            plan=plan,
            store_id=store,
            product_id=product,
            department=details[(store, product)][0],
            demand_class=details[(store, product)][1],
            added_at_step=plan.step,
        )
        for store, product in sorted(wanted - chosen)
    ]
    RolloutSeries.objects.bulk_create(new)
    return len(new)


# -- starting ------------------------------------------------------------------------------------


@transaction.atomic
def start_canary(
    *,
    version: ModelVersion,
    actor: AbstractBaseUser | None,
    reason: str,
    initial_share: float,
    steps: list[float] | tuple[float, ...] = (),
    bake_days: int = 1,
    guardrails: list[dict[str, Any]] | None = None,
    confidence: float | None = None,
    on: dt.date | None = None,
) -> RolloutPlan:
    """Start a canary of `version` at `initial_share` of its series, then `steps`; returns the
    plan. Raises PermissionDenied, ValidationError (a bad plan), or TransitionNotAllowed (no
    champion to compare with, a canary already running in the segment, a retired version)."""
    require_permission(actor, SERVE_PERMISSION, action="start a canary")
    shares = [initial_share, *steps]
    guardrails = [dict(rule) for rule in (guardrails or DEFAULT_GUARDRAILS)]
    validate_plan(shares=shares, bake_days=bake_days, guardrails=guardrails)
    on = on or tenant_today()
    target = lock_group(name=version.name, segment=version.segment)[version.pk]
    champion = incumbent_for(name=version.name, segment=version.segment)
    problem = None
    if champion is None or champion.pk == target.pk:
        problem = f"{version.version} has no champion to be compared with"
    elif target.status not in ModelVersion.AWAITING_DECISION:
        problem = f"{version.version} is {target.status}"
    elif RolloutPlan.objects.filter(
        name=version.name, segment=version.segment, status__in=RolloutPlan.ACTIVE
    ).exists():
        problem = f"a canary already runs in {target.where}"
    if problem:
        raise TransitionNotAllowed(f"Cannot start a canary: {problem}.", object=target)
    routing = {"routing_mode": RoutingMode.CANARY, "canary_weight": shares[0]}
    why = f"Canary started: {reason}"
    if target.status == ModelVersion.Status.CHALLENGER:
        configure_routing(version=target, actor=actor, reason=why, **routing)
    else:
        make_challenger(version=target, actor=actor, reason=why, **routing)
    plan = RolloutPlan.objects.create(
        name=version.name,
        segment=version.segment,
        version=target,
        champion=champion,
        shares=shares,
        bake_days=bake_days,
        guardrails=guardrails,
        confidence=confidence or float(tenant_policy().promotion_min_confidence),
        step_started_on=on,
        started_on=on,
        created_by=actor,
    )
    grow_series(plan, on=on)
    record(
        plan,
        kind=EventKind.STARTED,
        from_status="",
        actor=actor,
        reason=reason,
        evidence={
            "shares": shares,
            "bake_days": bake_days,
            "guardrails": guardrails,
            "confidence": plan.confidence,
            "champion": champion.version,
            "series": canary_series_by_department(plan=plan),
        },
    )
    version.refresh_from_db()
    return plan


# -- moving a plan -------------------------------------------------------------------------------


def next_step(
    plan: RolloutPlan,
    *,
    kind: str,
    actor: AbstractBaseUser | None,
    reason: str,
    on: dt.date,
    evidence: dict[str, Any] | None = None,
    day: dt.date | None = None,
    **fields: Any,
) -> RolloutPlan:
    """The plan's next share: more series (the earlier ones stay) and the version's weight."""
    move(
        plan,
        "advance",
        kind=kind,
        actor=actor,
        reason=reason,
        evidence=evidence,
        day=day,
        step_started_on=on,
        **fields,
    )
    added = grow_series(plan, on=on)
    configure_routing(
        version=plan.version,
        routing_mode=RoutingMode.CANARY,
        canary_weight=plan.share,
        actor=actor,
        reason=f"Canary step {plan.step + 1} of {len(plan.shares)} ({plan.share:.0%}); "
        f"{added} series added",
    )
    return plan


def finish_with_promotion(
    plan: RolloutPlan,
    *,
    kind: str,
    actor: AbstractBaseUser | None,
    reason: str,
    on: dt.date,
    evidence: dict[str, Any] | None = None,
    day: dt.date | None = None,
    **fields: Any,
) -> RolloutPlan:
    """Promote the version through the registry (its lock, one champion), then end the plan.
    A version trained on older sales than the champion it replaces (refreshed while the canary
    ran) has its recipe refreshed at once, rather than serve older data until the weekly
    retrain."""
    ensure_can(plan, "complete", action="complete", describe=describe(plan))
    version = plan.version
    replaced = get_champion_model(name=version.name, segment=version.segment)
    promote_to_champion(
        version=version,
        actor=actor,
        reason=f"Canary completed: {reason}",
        evidence={"rollout_plan": plan.pk, **(evidence or {})},
    )
    if (
        replaced is not None
        and version.training_end is not None
        and replaced.training_end is not None
        and version.training_end < replaced.training_end
    ):
        from mlops.services.retraining import queue_retrain

        queue_retrain(
            trigger=Trigger.SCHEDULED,
            name=version.name,
            segment=version.segment,
            trigger_metadata={
                "reason": f"{version.version} was promoted from its canary trained on sales up "
                f"to {version.training_end}, older than those of {replaced.version} it replaced "
                f"(up to {replaced.training_end}): its recipe is refreshed at once.",
                "rollout_plan": plan.pk,
            },
        )
    return move(
        plan,
        "complete",
        kind=kind,
        actor=actor,
        reason=reason,
        evidence=evidence,
        day=day,
        ended_on=on,
        outcome_reason=reason,
        **fields,
    )


def stop_serving(plan: RolloutPlan, *, actor: AbstractBaseUser | None, reason: str) -> None:
    """The champion serves the canary's series again; the version waits as a challenger for a
    person's decision (the daily judging no longer promotes it on its own)."""
    version = plan.version
    if version.status == ModelVersion.Status.CHALLENGER:
        configure_routing(
            version=version, routing_mode=RoutingMode.NONE, actor=actor, reason=reason
        )
        ModelVersion.objects.filter(pk=version.pk).update(
            decision_kind=DecisionKind.REVIEW, waiting_for=reason[:300]
        )


@transaction.atomic
def act_on_rollout(
    *, plan: RolloutPlan, action: str, actor: AbstractBaseUser | None, reason: str
) -> RolloutPlan:
    """A person's pause, resume, abort or skip (to the next step; past the last one it
    promotes); returns the plan. Raises PermissionDenied or TransitionNotAllowed."""
    if action not in MANAGER_ACTIONS:
        raise ValueError(f"Unknown action {action!r}: one of {', '.join(MANAGER_ACTIONS)}.")
    require_permission(actor, SERVE_PERMISSION, action=f"{action} a canary")
    fresh = locked(plan)
    today = tenant_today()
    if action == "skip":
        if fresh.is_last_step:
            finish_with_promotion(
                fresh, kind=EventKind.SKIPPED, actor=actor, reason=reason, on=today
            )
        else:
            next_step(fresh, kind=EventKind.SKIPPED, actor=actor, reason=reason, on=today)
    elif action == "abort":
        move(
            fresh,
            "abort",
            kind=EventKind.ABORTED,
            actor=actor,
            reason=reason,
            ended_on=today,
            outcome_reason=reason,
        )
        stop_serving(fresh, actor=actor, reason=f"Canary aborted: {reason}")
    else:
        move(fresh, action, kind=_EVENT[action], actor=actor, reason=reason)
    return fresh
