"""Factories for API tests: users in a role, model versions, alerts, stores and products."""

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from alerts.services import raise_alert
from mlops.models import ModelVersion
from tests.tenancy import PASSWORD


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"apiuser{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(Group.objects.get(name=extracted))
        if create:
            self.save()


class ModelVersionFactory(factory.django.DjangoModelFactory):
    """A version row as the registry leaves it; `status` may be set at creation."""

    class Meta:
        model = ModelVersion

    name = "demand_forecast"
    version_number = factory.Sequence(lambda n: n + 1)
    version = factory.LazyAttribute(lambda v: f"v{v.version_number}")
    segment = "global"
    algorithm = "seasonal_naive"
    status = ModelVersion.Status.CANDIDATE


def make_alert(**overrides):
    """An alert raised through the alert service (as drift detection raises it)."""
    fields = {
        "alert_type": "drift_detected",
        "severity": "critical",
        "title": "Model Drift Detected — 45% MAE Degradation",
        "message": "Champion model performance degraded.",
        "metadata": {"baseline_mae": 12.8, "recent_mae": 18.5, "drift_pct": 45.2},
    }
    fields.update(overrides)
    return raise_alert(**fields)
