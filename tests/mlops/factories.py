"""Factories for registry tests: users in a role, model versions in any state, sales."""

import datetime as dt

import factory
import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from forecasting.services import import_sales
from mlops.models import ModelVersion
from tests.tenancy import PASSWORD


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(Group.objects.get(name=extracted))
        if create:
            self.save()


class ModelVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelVersion

    name = "demand_forecast"
    version_number = factory.Sequence(lambda n: n + 1)
    version = factory.LazyAttribute(lambda v: f"v{v.version_number}")
    segment = "global"
    algorithm = "seasonal_naive"
    status = ModelVersion.Status.CANDIDATE
    training_start = dt.date(2025, 1, 1)
    training_end = dt.date(2025, 6, 30)
    training_rows = 1000


def load_sales(frame) -> None:
    """Write a generated sales frame to the tenant's tables through the sales import."""
    import_sales(source=frame)


def serve_forecasts(*, artifact, panel, day: dt.date):
    """Register `artifact` as the champion (a system move) and have it forecast the week from
    `day` for every active series; returns the version."""
    from mlops.services import forecast_next_days, promote_to_champion, register_model_version

    version = register_model_version(
        algorithm=artifact.algorithm,
        artifact=artifact,
        training_start=panel.first_day.date(),
        training_end=panel.last_day.date(),
        training_rows=int((~np.isnan(panel.quantity)).sum()),
    )
    promote_to_champion(version=version, actor=None, reason="The first model serves")
    forecast_next_days(day=day)
    version.refresh_from_db()
    return version
