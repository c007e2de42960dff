"""A tenant's country and subdivision name the holidays its forecasts know."""

import pytest
from django.core.exceptions import ValidationError

from tenants.models import Tenant, validate_country


def test_a_country_must_be_one_the_holidays_package_knows():
    validate_country("GB")
    validate_country("")
    with pytest.raises(ValidationError, match="not a country code"):
        validate_country("XX")


def test_a_subdivision_needs_its_country():
    Tenant(name="t", slug="t1", country="GB", subdivision="ENG").clean()
    with pytest.raises(ValidationError, match="needs a country"):
        Tenant(name="t", slug="t1", subdivision="ENG").clean()
    with pytest.raises(ValidationError, match="GB has no subdivision 'BY'"):
        Tenant(name="t", slug="t1", country="GB", subdivision="BY").clean()
