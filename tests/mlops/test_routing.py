"""Request routing: segment champion, global fallback, sticky canary share, store pins, shadows."""

import datetime as dt

import pytest

from forecasting.models import Product, Store
from mlops.models import ModelVersion
from mlops.services import (
    configure_routing,
    make_challenger,
    pin_stores,
    reject_model_version,
    select_model_for_request,
    start_shadow,
    unpin_stores,
)
from mlops.services.routing import RoutingTable, traffic_bucket
from tests.mlops.factories import ModelVersionFactory

Status = ModelVersion.Status


@pytest.fixture
def catalogue():
    stores = [Store.objects.create(code=f"S{i:03d}") for i in range(40)]
    grocery = [Product.objects.create(sku=f"G{i:03d}", department="Grocery") for i in range(25)]
    phones = Product.objects.create(sku="E001", department="Electronics")
    return {"stores": stores, "grocery": grocery, "phones": phones}


def route(store, product):
    return select_model_for_request(store=store, product=product)


def test_segment_champion_serves_its_department_and_the_global_champion_the_rest(catalogue):
    global_champion = ModelVersionFactory(status=Status.CHAMPION)
    electronics = ModelVersionFactory(segment="department:Electronics", status=Status.CHAMPION)
    store = catalogue["stores"][0]

    phones = route(store, catalogue["phones"])
    bread = route(store, catalogue["grocery"][0])

    assert phones.version == electronics and "segment champion" in phones.reason
    assert bread.version == global_champion and "global champion" in bread.reason


def test_no_champion_means_no_version_and_says_why(catalogue):
    decision = route(catalogue["stores"][0], catalogue["phones"])

    assert decision.version is None
    assert "no champion" in decision.reason


def test_canary_takes_its_share_of_series_and_each_series_always_gets_the_same_answer(
    catalogue, manager
):
    champion = ModelVersionFactory(status=Status.CHAMPION)
    canary = ModelVersionFactory()
    make_challenger(
        version=canary, actor=manager, reason="try", routing_mode="canary", canary_weight=0.25
    )
    series = [(store, product) for store in catalogue["stores"] for product in catalogue["grocery"]]
    table = RoutingTable.load(name="demand_forecast")

    served = [
        table.route(store_id=store.pk, product_id=product.pk, department="Grocery").version.pk
        for store, product in series
    ]

    share = served.count(canary.pk) / len(series)
    assert 0.21 <= share <= 0.29, share  # 1,000 series around the 25% weight
    assert set(served) == {champion.pk, canary.pk}
    # Sticky: every request for a series gets the answer its series got.
    for (store, product), version_pk in list(zip(series, served, strict=True))[::40]:
        assert route(store, product).version.pk == version_pk
        assert route(store, product).version.pk == version_pk
    # Outside its share the canary still answers in the shadow of the champion.
    store, product = series[served.index(champion.pk)]
    assert canary in route(store, product).shadow_versions


def test_traffic_bucket_is_a_deterministic_hash_not_a_random_draw():
    assert traffic_bucket(name="demand_forecast", store_id=3, product_id=7) == traffic_bucket(
        name="demand_forecast", store_id=3, product_id=7
    )
    assert traffic_bucket(name="demand_forecast", store_id=3, product_id=7) != traffic_bucket(
        name="other_model", store_id=3, product_id=7
    )


def test_canary_weight_zero_sends_no_traffic(catalogue, manager):
    champion = ModelVersionFactory(status=Status.CHAMPION)
    canary = ModelVersionFactory()
    make_challenger(
        version=canary, actor=manager, reason="x", routing_mode="canary", canary_weight=0.5
    )
    configure_routing(version=canary, routing_mode="shadow", actor=manager, reason="pause canary")

    served = {route(store, catalogue["phones"]).version.pk for store in catalogue["stores"]}

    assert served == {champion.pk}


def test_shadow_versions_come_back_for_the_caller_to_log(catalogue, scientist):
    champion = ModelVersionFactory(status=Status.CHAMPION)
    shadow = ModelVersionFactory()
    start_shadow(version=shadow, actor=scientist, reason="compare")
    grocery_only = ModelVersionFactory(segment="department:Grocery")
    start_shadow(version=grocery_only, actor=scientist, reason="compare")

    phones = route(catalogue["stores"][0], catalogue["phones"])
    bread = route(catalogue["stores"][0], catalogue["grocery"][0])

    assert phones.version == champion
    assert phones.shadow_versions == (shadow,)
    assert set(bread.shadow_versions) == {shadow, grocery_only}


def test_pinned_stores_are_served_by_their_version_until_unpinned(catalogue, manager, viewer):
    champion = ModelVersionFactory(status=Status.CHAMPION)
    rollout = ModelVersionFactory()
    make_challenger(version=rollout, actor=manager, reason="Berlin first")
    berlin, munich = catalogue["stores"][:2]
    with pytest.raises(Exception, match="may not"):
        pin_stores(stores=[berlin], version=rollout, actor=viewer, reason="x")

    pin_stores(stores=[berlin], version=rollout, actor=manager, reason="Berlin pilot")

    assert route(berlin, catalogue["phones"]).version == rollout
    assert "pinned" in route(berlin, catalogue["phones"]).reason
    assert route(munich, catalogue["phones"]).version == champion

    unpin_stores(stores=[berlin], name="demand_forecast", actor=manager)
    assert route(berlin, catalogue["phones"]).version == champion


def test_a_pin_to_a_version_that_was_archived_is_ignored(catalogue, manager):
    champion = ModelVersionFactory(status=Status.CHAMPION)
    rollout = ModelVersionFactory(status=Status.CHALLENGER)
    pin_stores(stores=catalogue["stores"][:1], version=rollout, actor=manager, reason="pilot")
    reject_model_version(version=rollout, actor=manager, reason="pilot over")

    assert route(catalogue["stores"][0], catalogue["phones"]).version == champion


def test_a_demand_class_champion_serves_its_class_unless_a_department_champion_does(catalogue):
    from forecasting.models import SeriesDemandClass

    global_champion = ModelVersionFactory(status=Status.CHAMPION)
    slow_movers = ModelVersionFactory(
        segment="class:intermittent", algorithm="intermittent", status=Status.CHAMPION
    )
    electronics = ModelVersionFactory(segment="department:Electronics", status=Status.CHAMPION)
    store = catalogue["stores"][0]
    slow, fast = catalogue["grocery"][:2]
    for product, demand_class in ((slow, "intermittent"), (fast, "smooth")):
        SeriesDemandClass.objects.create(
            store=store, product=product, demand_class=demand_class, cv2=0.1, as_of=dt.date.today()
        )
    SeriesDemandClass.objects.create(
        store=store,
        product=catalogue["phones"],
        demand_class="intermittent",
        cv2=0.1,
        as_of=dt.date.today(),
    )

    assert route(store, slow).version == slow_movers
    assert "class:intermittent" in route(store, slow).reason
    assert route(store, fast).version == global_champion
    assert route(store, catalogue["phones"]).version == electronics


def test_a_segment_is_global_a_department_or_a_demand_class():
    from django.core.exceptions import ValidationError

    from mlops.models import validate_segment

    for segment in ("global", "department:Toys", "class:intermittent", "class:lumpy"):
        validate_segment(segment)
    for segment in ("class:slow", "class:", "store:S1"):
        with pytest.raises(ValidationError, match="class:<demand class>"):
            validate_segment(segment)


def test_a_global_canary_takes_no_series_a_departments_own_champion_serves(catalogue, manager):
    ModelVersionFactory(status=Status.CHAMPION)
    electronics = ModelVersionFactory(segment="department:Electronics", status=Status.CHAMPION)
    canary = ModelVersionFactory()
    make_challenger(
        version=canary, actor=manager, reason="all of it", routing_mode="canary", canary_weight=1.0
    )
    store = catalogue["stores"][0]

    phones = route(store, catalogue["phones"])
    bread = route(store, catalogue["grocery"][0])

    # Promoted, the canary would be the global champion: Electronics stays its champion's.
    assert phones.version == electronics and canary in phones.shadow_versions
    assert bread.version == canary


def test_a_department_canary_takes_its_departments_series_from_the_global_champion(
    catalogue, manager
):
    champion = ModelVersionFactory(status=Status.CHAMPION)
    canary = ModelVersionFactory(segment="department:Electronics")
    make_challenger(
        version=canary, actor=manager, reason="its own", routing_mode="canary", canary_weight=1.0
    )
    store = catalogue["stores"][0]

    assert route(store, catalogue["phones"]).version == canary
    assert route(store, catalogue["grocery"][0]).version == champion
