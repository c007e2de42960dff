from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django_celery_beat.models import PeriodicTask
from django_tenants.utils import schema_context

from mlops.schedules import JOBS
from tenants.models import Domain, Tenant
from tenants.roles import ROLES
from tenants.services import provision_tenant


def test_test_tenant_has_roles_admin_and_schedules(tenant):
    assert connection.schema_name == "acme"
    assert set(Group.objects.values_list("name", flat=True)) == set(ROLES)
    assert get_user_model().objects.get(username="admin").is_superuser
    with schema_context("public"):
        names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert {f"{job.key}@acme" for job in JOBS} <= names


def test_provisioning_again_changes_nothing_and_keeps_edits(tenant):
    with schema_context("public"):
        task = PeriodicTask.objects.get(name="daily_backtest@acme")
        task.enabled = False
        task.save()
        before = (Tenant.objects.count(), Domain.objects.count(), PeriodicTask.objects.count())
    result = provision_tenant(slug="acme", domain="acme.testserver")
    assert not result.created
    assert result.admin_password is None
    with schema_context("public"):
        after = (Tenant.objects.count(), Domain.objects.count(), PeriodicTask.objects.count())
        assert not PeriodicTask.objects.get(name="daily_backtest@acme").enabled
    assert after == before
    assert Group.objects.count() == len(ROLES)


def test_provisioning_rejects_a_bad_slug_and_writes_nothing(tenant):
    import pytest
    from django.core.exceptions import ValidationError

    with schema_context("public"):
        before = Tenant.objects.count()
        with pytest.raises(ValidationError, match="lowercase"):
            provision_tenant(slug="Bad Slug!")
        assert Tenant.objects.count() == before
