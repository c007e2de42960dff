"""A canary plan inside a replay: the tenant's version's recipe, trained the day it starts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from django.core.exceptions import ValidationError
from django_tenants.utils import tenant_context

from forecasting.families import build_model
from mlops.models import ModelVersion, RolloutPlan, Trigger, validate_plan
from mlops.schedules import JOBS_BY_KEY, periodic_task_name
from mlops.services.data import latest_sales_day, load_panel
from mlops.services.evaluation import Recipe
from mlops.services.registry import register_model_version
from mlops.services.rollout_guardrails import DEFAULT_GUARDRAILS
from mlops.services.rollouts import start_canary

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from tenants.models import Tenant


@dataclass(frozen=True)
class CanaryReplay:
    """What to roll out in a replay: a version of the source tenant (its label, e.g. "v7"), the
    day the plan starts (None: the replay's first day), its shares and its bake days."""

    version: str
    shares: tuple[float, ...]
    bake_days: int = 1
    start: dt.date | None = None


@dataclass(frozen=True)
class CanaryRecipe:
    """The source version's recipe, read before the sandbox exists."""

    source_version: str
    name: str
    recipe: Recipe


@dataclass(frozen=True)
class PreparedCanary:
    """A checked canary of a replay: what to roll out, its recipe, and the day it starts."""

    canary: CanaryReplay
    recipe: CanaryRecipe
    day: dt.date


def prepare_canary(
    *,
    source: Tenant,
    canary: CanaryReplay,
    first_day: dt.date,
    last_day: dt.date,
    served_names: set[str],
) -> PreparedCanary:
    """The recipe to roll out and the day its plan starts, checked before the replay builds
    anything; raises ValueError for a start outside the replayed days, a tenant whose canary
    judging is not scheduled (the replay runs its own schedules), an unknown version, or a
    model without a champion in the sandbox (`served_names`: the models whose champions the
    replay trains) to be compared with."""
    from django_celery_beat.models import PeriodicTask

    day = canary.start or first_day
    if not first_day <= day <= last_day:
        raise ValueError(
            f"The canary starts on {day}, outside the replayed days ({first_day} to {last_day})."
        )
    judging = periodic_task_name(job=JOBS_BY_KEY["daily_canary_evaluation"], tenant=source)
    if not PeriodicTask.objects.filter(name=judging, enabled=True).exists():
        raise ValueError(
            f"{source.slug} has no enabled daily_canary_evaluation schedule: the replay runs "
            "the tenant's own schedules, so the plan would never be judged."
        )
    recipe = _canary_recipe(source=source, canary=canary)
    if recipe.name not in served_names:
        raise ValueError(
            f"{canary.version} is a version of {recipe.name}, which has no champion to be "
            "compared with."
        )
    return PreparedCanary(canary=canary, recipe=recipe, day=day)


def _canary_recipe(*, source: Tenant, canary: CanaryReplay) -> CanaryRecipe:
    """The recipe of the source's version `canary.version`; raises ValueError for an unknown or
    ambiguous label, or a plan that could not start (shares, bake days)."""
    try:
        validate_plan(
            shares=list(canary.shares), bake_days=canary.bake_days, guardrails=DEFAULT_GUARDRAILS
        )
    except ValidationError as error:
        problems = "; ".join(f"{key}: {' '.join(text)}" for key, text in error.message_dict.items())
        raise ValueError(f"The canary plan is refused: {problems}") from None
    with tenant_context(source):
        versions = list(ModelVersion.objects.filter(version=canary.version))
    if not versions:
        raise ValueError(f"{source.slug} has no version {canary.version} to roll out.")
    if len(versions) > 1:
        names = ", ".join(sorted(version.name for version in versions))
        raise ValueError(f"{canary.version} names a version of several models ({names}).")
    (version,) = versions
    return CanaryRecipe(
        source_version=version.version, name=version.name, recipe=Recipe.of(version)
    )


def train_canary_version(*, canary: CanaryRecipe, actor: AbstractBaseUser) -> ModelVersion:
    """The recipe fitted on its window of the sales up to the latest day, registered as a
    candidate (not judged by the gate: the canary plan judges it)."""
    recipe = canary.recipe
    end = latest_sales_day()
    panel = load_panel(start=end - dt.timedelta(days=recipe.window_days - 1), end=end)
    training = panel.select(recipe.series_mask(panel))
    model = build_model(recipe.algorithm, **recipe.hyperparameters).fit(training)
    return register_model_version(
        name=canary.name,
        segment=recipe.segment,
        algorithm=recipe.algorithm,
        model=model,
        trigger=Trigger.MANUAL,
        created_by=actor,
        training_start=training.first_day.date(),
        training_end=training.last_day.date(),
        training_rows=int(np.count_nonzero(~np.isnan(training.quantity))),
        window_days=recipe.window_days,
    )


def start_replayed_canary(*, prepared: PreparedCanary, actor: AbstractBaseUser) -> RolloutPlan:
    """Train the recipe on the sales known on the canary's day and start its plan that day, as
    a manager would (default guardrails and confidence); returns the plan."""
    canary, recipe = prepared.canary, prepared.recipe
    version = train_canary_version(canary=recipe, actor=actor)
    return start_canary(
        version=version,
        actor=actor,
        reason=f"replay_operations --canary {recipe.source_version}: its recipe trained on the "
        f"sales before {prepared.day}",
        initial_share=canary.shares[0],
        steps=list(canary.shares[1:]),
        bake_days=canary.bake_days,
        on=prepared.day,
    )
