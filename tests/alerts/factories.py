"""Factories for alert tests: users in role groups, model versions in a chosen status."""

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from mlops.models import ModelVersion
from tests.tenancy import PASSWORD


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@acme.example")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(Group.objects.get(name=extracted))
        if create:
            self.save()


class ModelVersionFactory(factory.django.DjangoModelFactory):
    """A version row as the registry would leave it; `status` may be set at creation."""

    class Meta:
        model = ModelVersion

    name = "demand_forecast"
    version_number = factory.Sequence(lambda n: n + 1)
    version = factory.LazyAttribute(lambda v: f"v{v.version_number}")
    algorithm = "xgboost"
    status = ModelVersion.Status.CANDIDATE
