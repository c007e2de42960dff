"""Which model version answers a series: segment champion, canary share, store pins, shadows."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db import transaction

from forecasting.models import Product, SeriesDemandClass, Store
from mlops.models import (
    DEFAULT_MODEL_NAME,
    GLOBAL_SEGMENT,
    ModelVersion,
    RolloutPlan,
    RolloutSeries,
    RoutingOverride,
)
from mlops.services.lifecycle import SERVE_PERMISSION, require_permission

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

Status = ModelVersion.Status
RoutingMode = ModelVersion.RoutingMode
ACTIVE_STATUSES = (Status.CHAMPION, Status.CHALLENGER, Status.SHADOW)


def department_segment(department: str) -> str:
    return f"department:{department}"


def class_segment(demand_class: str) -> str:
    return f"class:{demand_class}"


def covers(version: ModelVersion, department: str, demand_class: str | None = None) -> bool:
    """Whether a version's segment includes a series of this department (and demand class)."""
    segments = [GLOBAL_SEGMENT, department_segment(department)]
    if demand_class is not None:
        segments.append(class_segment(demand_class))
    return version.segment in segments


def serving_segment(
    champion_segments: Iterable[str], department: str, demand_class: str | None = None
) -> str | None:
    """The segment whose champion serves a series: its department's, else its demand class's,
    else the global one; None when none of them has a champion."""
    present = set(champion_segments)
    candidates = [department_segment(department)]
    if demand_class is not None:
        candidates.append(class_segment(demand_class))
    candidates.append(GLOBAL_SEGMENT)
    return next((segment for segment in candidates if segment in present), None)


def takes_over(version: ModelVersion, serving: str | None) -> bool:
    """Whether `version` (a canary covering the series) would serve a series now served by the
    champion of segment `serving` once it is promoted: its segment is that one, or one that
    routing puts before it (a department before a demand class before global). A global canary
    never takes a series a department's own champion serves: promoted, it would not serve it."""
    order = {"department": 0, "class": 1, GLOBAL_SEGMENT: 2}

    def rank(segment: str) -> int:
        return order[segment.split(":", 1)[0]]

    return serving is None or rank(version.segment) <= rank(serving)


def traffic_bucket(*, name: str, store_id: int | str, product_id: int | str) -> float:
    """A series' fixed place in [0, 1) (from its ids, or its codes): the same series always
    lands in the same canary arm."""
    digest = hashlib.sha256(f"{name}|{store_id}|{product_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class RoutingDecision:
    """The version that serves a request, why, and the versions that shadow it."""

    version: ModelVersion | None
    reason: str
    shadow_versions: tuple[ModelVersion, ...] = ()


@dataclass
class RoutingTable:
    """The active versions of one model name and its store pins, loaded once, routed many times
    (a request routes one series; the daily forecast routes every series)."""

    name: str
    champions: dict[str, ModelVersion] = field(default_factory=dict)
    canaries: list[ModelVersion] = field(default_factory=list)
    shadows: list[ModelVersion] = field(default_factory=list)
    pins: dict[int, ModelVersion] = field(default_factory=dict)
    # A canary under a rollout plan serves the plan's chosen series, not a hashed share.
    canary_series: dict[int, set[tuple[int, int]]] = field(default_factory=dict)

    @classmethod
    def load(cls, *, name: str = DEFAULT_MODEL_NAME) -> RoutingTable:
        table = cls(name=name)
        active = ModelVersion.objects.filter(name=name, status__in=ACTIVE_STATUSES).order_by(
            "-version_number"
        )
        for version in active:
            if version.status == Status.CHAMPION:
                table.champions[version.segment] = version
            elif version.routing_mode == RoutingMode.CANARY and version.canary_weight > 0:
                table.canaries.append(version)
            else:
                # Shadows and challengers not taking traffic forecast beside the served version.
                table.shadows.append(version)
        pins = RoutingOverride.objects.filter(
            name=name, version__status__in=ACTIVE_STATUSES
        ).select_related("version")
        table.pins = {pin.store_id: pin.version for pin in pins}
        if table.canaries:
            chosen = RolloutSeries.objects.filter(
                plan__status__in=RolloutPlan.ACTIVE,
                plan__version__in=[version.pk for version in table.canaries],
            ).values_list("plan__version_id", "store_id", "product_id")
            for version_id, store_id, product_id in chosen:
                table.canary_series.setdefault(version_id, set()).add((store_id, product_id))
        return table

    @property
    def versions(self) -> list[ModelVersion]:
        """Every active version that forecasts (champions, canaries, shadows, pinned ones)."""
        seen: dict[int, ModelVersion] = {}
        for version in [*self.champions.values(), *self.canaries, *self.shadows]:
            seen.setdefault(version.pk, version)
        for version in self.pins.values():
            seen.setdefault(version.pk, version)
        return list(seen.values())

    def route(
        self,
        *,
        store_id: int,
        product_id: int,
        department: str,
        demand_class: str | None = None,
    ) -> RoutingDecision:
        """A department's champion first, then the series' demand class's, then global."""
        pinned = self.pins.get(store_id)
        serving = serving_segment(self.champions, department, demand_class)
        champion = self.champions[serving] if serving is not None else None
        # The series' segment below global: its department's, else its demand class's.
        segment = department_segment(department)
        if segment not in self.champions and demand_class is not None:
            segment = class_segment(demand_class)
        if pinned is not None and covers(pinned, department, demand_class):
            served, reason = pinned, f"store {store_id} is pinned to {pinned.version}"
        elif champion is None:
            served, reason = None, f"{self.name} has no champion for {segment} or global"
        else:
            served = champion
            which = "segment" if champion.segment == segment else "global"
            reason = f"{which} champion {champion.version} ({champion.segment})"
            canary = self._canary_for(department, demand_class)
            if (
                canary is not None
                and takes_over(canary, champion.segment)
                and self._in_canary(canary, store_id, product_id)
            ):
                served = canary
                reason = (
                    f"canary {canary.version} takes {canary.canary_weight:.0%} of "
                    f"{canary.segment} traffic; this series is in its share"
                )
        shadow_versions = tuple(
            version
            for version in [*self.shadows, *self.canaries]
            if covers(version, department, demand_class)
            and (served is None or version.pk != served.pk)
        )
        return RoutingDecision(version=served, reason=reason, shadow_versions=shadow_versions)

    def _in_canary(self, canary: ModelVersion, store_id: int, product_id: int) -> bool:
        """Whether the series is in the canary's share: its plan's series, else a sticky hash."""
        members = self.canary_series.get(canary.pk)
        if members is not None:
            return (store_id, product_id) in members
        bucket = traffic_bucket(name=self.name, store_id=store_id, product_id=product_id)
        return bucket < canary.canary_weight

    def _canary_for(self, department: str, demand_class: str | None) -> ModelVersion | None:
        """The canary for this series: a segment's own first, else a global one."""
        matching = [
            version for version in self.canaries if covers(version, department, demand_class)
        ]
        matching.sort(key=lambda version: version.segment == GLOBAL_SEGMENT)
        return matching[0] if matching else None


def select_model_for_request(
    *, store: Store, product: Product, name: str = DEFAULT_MODEL_NAME
) -> RoutingDecision:
    """The version that serves this series (store pin, canary share, department or demand
    class champion, else global champion) and the versions that shadow it (their forecasts
    are stored by the daily forecast job, never by a request)."""
    table = RoutingTable.load(name=name)
    demand_class = (
        SeriesDemandClass.objects.filter(store=store, product=product)
        .values_list("demand_class", flat=True)
        .first()
    )
    return table.route(
        store_id=store.pk,
        product_id=product.pk,
        department=product.department,
        demand_class=demand_class,
    )


@transaction.atomic
def pin_stores(
    *,
    stores: Iterable[Store],
    version: ModelVersion,
    actor: AbstractBaseUser | None,
    reason: str,
) -> list[RoutingOverride]:
    """Serve these stores from `version` (a store-segment rollout); returns the pins. Raises
    PermissionDenied, or ValueError for a version that is not active."""
    require_permission(actor, SERVE_PERMISSION, action="pin stores to a version")
    if version.status not in ACTIVE_STATUSES:
        raise ValueError(f"{version.version} is {version.status}; only active versions serve.")
    pins = []
    for store in stores:
        pin, _ = RoutingOverride.objects.update_or_create(
            name=version.name,
            store=store,
            defaults={"version": version, "reason": reason, "created_by": actor},
        )
        pins.append(pin)
    return pins


@transaction.atomic
def unpin_stores(*, stores: Iterable[Store], name: str, actor: AbstractBaseUser | None) -> int:
    """Return these stores to normal routing; returns how many pins were removed. Raises
    PermissionDenied."""
    require_permission(actor, SERVE_PERMISSION, action="unpin stores")
    deleted, _ = RoutingOverride.objects.filter(
        name=name, store__in=[store.pk for store in stores]
    ).delete()
    return deleted
