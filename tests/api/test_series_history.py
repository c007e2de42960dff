"""GET /api/v1/series/history: one series day by day, as stored: actuals, stock-outs,
promotions, the served forecast with its interval and each shadow's forecast."""

import datetime as dt

import pytest

from forecasting.models import Forecast, PlannedPromotion, Product, Sale, Store
from mlops.models import ModelVersion
from tests.api.clients import assert_error, client_for
from tests.api.factories import ModelVersionFactory
from tests.api.test_reads import _tenant_checksums

FIRST = dt.date(2026, 3, 1)
DAYS = [FIRST + dt.timedelta(days=n) for n in range(10)]
URL = "/api/v1/series/history"
QUERY = {"store": "S001", "product": "TV-55", "start": "2026-03-01", "end": "2026-03-10"}


def _run(version, store, product, *, day, made_on, value, served):
    Forecast.objects.create(
        model_version=version,
        store=store,
        product=product,
        made_on=made_on,
        target_date=day,
        value=value,
        lower=value - 2,
        upper=value + 3,
        served=served,
    )


@pytest.fixture
def stored():
    """Ten days of S001/TV-55: v1 served the first five, v2 the rest, v3 shadowed all; one
    stock-out, one promoted sale, a planned department promotion on the last two days, a day
    only the store's other product sold and a day the store reported nothing."""
    store = Store.objects.create(code="S001")
    product = Product.objects.create(sku="TV-55", department="Electronics")
    radio = Product.objects.create(sku="RADIO", department="Electronics")
    old = ModelVersionFactory(version_number=1, status=ModelVersion.Status.ARCHIVED)
    new = ModelVersionFactory(version_number=2, status=ModelVersion.Status.CHAMPION)
    shadow = ModelVersionFactory(version_number=3, status=ModelVersion.Status.SHADOW)
    quantities = {0: 5, 1: 7, 2: 0, 3: 9, 5: 4, 6: 6, 7: 3}  # day 4: RADIO only; 8, 9: nothing
    for index, quantity in quantities.items():
        Sale.objects.create(
            store=store,
            product=product,
            date=DAYS[index],
            quantity=quantity,
            in_stock=index != 2,
            on_promotion=index == 5,
        )
    Sale.objects.create(store=store, product=radio, date=DAYS[4], quantity=2)
    PlannedPromotion.objects.create(
        department="Electronics",
        start_date=DAYS[8],
        end_date=DAYS[9] + dt.timedelta(days=3),
        known_since=dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
    )
    for index, day in enumerate(DAYS):
        serving = old if index < 5 else new
        # An older run of the day is replaced by the latest one made on or before it.
        _run(
            serving,
            store,
            product,
            day=day,
            made_on=day - dt.timedelta(days=2),
            value=1.0,
            served=True,
        )
        _run(
            serving,
            store,
            product,
            day=day,
            made_on=day - dt.timedelta(days=1),
            value=10.0 + index,
            served=True,
        )
        _run(
            shadow,
            store,
            product,
            day=day,
            made_on=day - dt.timedelta(days=1),
            value=20.0 + index,
            served=False,
        )
        # A run made after the day is no forecast of it.
        _run(
            shadow,
            store,
            product,
            day=day,
            made_on=day + dt.timedelta(days=1),
            value=99.0,
            served=False,
        )
    return {"store": store, "product": product}


def expected_day(index: int) -> dict:
    actual = {0: 5, 1: 7, 2: 0, 3: 9, 4: 0, 5: 4, 6: 6, 7: 3}.get(index)
    made_on = (DAYS[index] - dt.timedelta(days=1)).isoformat()
    return {
        "date": DAYS[index].isoformat(),
        "actual": actual,
        "censored": index == 2,
        "promotion": index in (5, 8, 9),
        "served": {
            "version": "v1" if index < 5 else "v2",
            "forecast": 10.0 + index,
            "lower": 8.0 + index,
            "upper": 13.0 + index,
            "made_on": made_on,
        },
        "shadows": [{"version": "v3", "forecast": 20.0 + index, "made_on": made_on}],
    }


def test_each_day_answers_what_is_stored_for_the_series(viewer, stored):
    response = client_for(viewer).get(URL, QUERY)

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["store"], body["product"], body["department"]) == ("S001", "TV-55", "Electronics")
    assert (body["start"], body["end"]) == ("2026-03-01", "2026-03-10")
    assert body["days"] == [expected_day(index) for index in range(10)]


def test_days_without_forecasts_answer_no_served_and_no_shadows(viewer, stored):
    body = client_for(viewer).get(URL, {**QUERY, "start": "2026-02-25", "end": "2026-03-01"})

    days = body.json()["days"]
    assert [day["date"] for day in days][:2] == ["2026-02-25", "2026-02-26"]
    assert days[0] == {
        "date": "2026-02-25",
        "actual": None,
        "censored": False,
        "promotion": False,
        "served": None,
        "shadows": [],
    }
    assert days[-1] == expected_day(0)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"start": None}, "start"),
        ({"end": None}, "end"),
        ({"store": None}, "store"),
        ({"start": "2026-13-01"}, "start"),
        ({"end": "2026-02-28"}, "end"),  # before the start
        ({"end": "2027-03-02"}, "end"),  # 366 days is the most: this is 367
    ],
)
def test_missing_or_bad_parameters_are_a_400(viewer, stored, change, field):
    query = {key: value for key, value in {**QUERY, **change}.items() if value is not None}

    error = assert_error(client_for(viewer).get(URL, query), 400, "validation_error")

    assert field in error["details"]["fields"]


def test_a_year_with_its_leap_day_is_allowed(viewer, stored):
    response = client_for(viewer).get(URL, {**QUERY, "start": "2028-01-01", "end": "2028-12-31"})

    assert response.status_code == 200
    assert len(response.json()["days"]) == 366


@pytest.mark.parametrize(
    "series",
    [{"store": "S404"}, {"product": "NOPE"}, {"product": "RADIO-2"}],
)
def test_an_unknown_series_is_a_404(viewer, stored, series):
    # RADIO-2 exists but never sold at S001 and was never forecast there.
    Product.objects.create(sku="RADIO-2", department="Electronics")

    assert_error(client_for(viewer).get(URL, {**QUERY, **series}), 404, "not_found")


def test_reading_writes_nothing_and_needs_a_role(viewer, no_role, stored):
    client = client_for(viewer)  # its token is made here, before the count
    before = _tenant_checksums()

    for _ in range(3):
        assert client.get(URL, QUERY).status_code == 200

    assert _tenant_checksums() == before
    assert_error(client_for(no_role).get(URL, QUERY), 403)
