"""The daily forecast: every active version forecasts, routing decides what is served."""

import datetime as dt
import zoneinfo
from collections import Counter

import pytest
import time_machine
from django.utils import timezone

from forecasting.artifacts import serialize
from forecasting.families import build_model
from forecasting.models import Forecast
from forecasting.panel import Panel
from forecasting.synthetic import generate_sales
from mlops.models import ShadowPrediction
from mlops.selectors import served_by
from mlops.services import (
    forecast_next_days,
    make_challenger,
    promote_to_champion,
    register_model_version,
    select_model_for_request,
    start_shadow,
)
from tests.mlops.conftest import QUICK_XGBOOST, SALES
from tests.mlops.factories import load_sales
from tests.tenancy import TEST_TENANTS

# The forecast is made today, on sales that end yesterday, so that "which transition made this
# version champion by the day the forecast was made" reads the real transition times.
DAY = timezone.now().astimezone(zoneinfo.ZoneInfo(TEST_TENANTS["acme"]["time_zone"])).date()
TRAINING_DAYS = 120


@pytest.fixture(scope="module")
def recent_frame():
    return generate_sales(**{**SALES, "end_date": DAY - dt.timedelta(days=1)})


@pytest.fixture(scope="module")
def fitted(recent_frame):
    """Artifacts of the three versions, fitted once for the module."""
    panel = Panel.from_frame(recent_frame)
    recent = panel.window(DAY - dt.timedelta(days=TRAINING_DAYS), DAY)
    return {
        "champion": serialize(build_model("seasonal_naive").fit(recent)),
        "canary": serialize(build_model("xgboost", **QUICK_XGBOOST).fit(recent)),
        "shadow": serialize(build_model("seasonal_naive", calibration_windows=2).fit(recent)),
    }


@pytest.fixture
def arena(recent_frame, fitted, manager, scientist):
    """A seasonal-naive champion, an XGBoost canary on half the series, a shadow version,
    given their roles on DAY (the tests' clock may have passed midnight since DAY was read)."""
    load_sales(recent_frame)
    zone = zoneinfo.ZoneInfo(TEST_TENANTS["acme"]["time_zone"])
    with time_machine.travel(dt.datetime.combine(DAY, dt.time(6), tzinfo=zone), tick=True):
        return _arena_versions(fitted, manager, scientist)


def _arena_versions(fitted, manager, scientist):
    versions = {
        role: register_model_version(
            algorithm=artifact.algorithm,
            artifact=artifact,
            training_start=DAY - dt.timedelta(days=TRAINING_DAYS),
            training_end=DAY - dt.timedelta(days=1),
            training_rows=1,
        )
        for role, artifact in fitted.items()
    }
    promote_to_champion(version=versions["champion"], actor=manager, reason="Baseline")
    make_challenger(
        version=versions["canary"],
        actor=manager,
        reason="half the series",
        routing_mode="canary",
        canary_weight=0.5,
    )
    start_shadow(version=versions["shadow"], actor=scientist, reason="compare quietly")
    return versions


def test_every_active_version_forecasts_and_exactly_one_row_per_series_day_is_served(arena):
    summary = forecast_next_days(day=DAY)

    rows = Forecast.objects.filter(made_on=DAY)
    n_series = summary.active_series
    assert n_series > 0
    per_version = Counter(rows.values_list("model_version_id", flat=True))
    assert per_version == {version.pk: n_series * 7 for version in arena.values()}
    served = Counter(rows.filter(served=True).values_list("store_id", "product_id", "target_date"))
    assert len(served) == n_series * 7 and set(served.values()) == {1}
    assert sorted({r.target_date for r in rows}) == [DAY + dt.timedelta(days=i) for i in range(7)]
    # What is served is what routing says for that series.
    for row in rows.filter(served=True, target_date=DAY).select_related("store", "product")[:15]:
        routed = select_model_for_request(store=row.store, product=row.product)
        assert routed.version.pk == row.model_version_id
    canary_share = rows.filter(served=True, model_version=arena["canary"]).count() / (n_series * 7)
    assert 0.2 < canary_share < 0.8


def test_shadow_answers_are_logged_beside_the_served_value(arena):
    summary = forecast_next_days(day=DAY)

    shadows = ShadowPrediction.objects.filter(key=f"daily:{DAY}")
    # The shadow version answers beside whichever version serves each series.
    assert shadows.filter(challenger_version=arena["shadow"]).count() == summary.active_series * 7
    canary_rows = shadows.filter(challenger_version=arena["canary"])
    served_by_canary = Forecast.objects.filter(
        made_on=DAY, served=True, model_version=arena["canary"]
    ).count()
    # The canary shadows the champion on the series it does not serve.
    assert canary_rows.count() == summary.active_series * 7 - served_by_canary
    assert set(canary_rows.values_list("champion_version_id", flat=True)) == {arena["champion"].pk}
    one = canary_rows.select_related("store", "product").first()
    served_value = Forecast.objects.get(
        made_on=DAY, served=True, store=one.store, product=one.product, target_date=one.target_date
    ).value
    assert one.champion_value == pytest.approx(served_value)
    assert summary.shadow_rows == shadows.count()


def test_running_the_same_day_twice_leaves_one_set_of_rows(arena):
    first = forecast_next_days(day=DAY)
    count = Forecast.objects.count(), ShadowPrediction.objects.count()

    second = forecast_next_days(day=DAY)

    assert (Forecast.objects.count(), ShadowPrediction.objects.count()) == count
    assert first.forecast_rows == second.forecast_rows == count[0]


def test_served_by_names_the_version_and_the_move_that_made_it_champion(arena):
    forecast_next_days(day=DAY)
    row = (
        Forecast.objects.filter(made_on=DAY, served=True, model_version=arena["champion"])
        .select_related("store", "product")
        .first()
    )

    answer = served_by(store=row.store, product=row.product, date=row.target_date)

    assert answer["version"]["version"] == arena["champion"].version
    assert answer["status_then"] == "champion"
    move = answer["champion_transition"]
    assert move["to_status"] == "champion" and move["actor"] == "manager"
    assert move["reason"] == "Baseline"
    assert answer["value"] == row.value
    assert served_by(store=row.store, product=row.product, date=DAY - dt.timedelta(days=30)) is None


def test_a_version_that_cannot_load_does_not_stop_the_others(arena):
    arena["shadow"].artifact.storage.delete(arena["shadow"].artifact.name)

    summary = forecast_next_days(day=DAY)

    assert [failed["version"] for failed in summary.failed_versions] == [arena["shadow"].version]
    served = Forecast.objects.filter(made_on=DAY, served=True).count()
    assert served == summary.active_series * 7
