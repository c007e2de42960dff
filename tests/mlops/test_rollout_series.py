"""A canary's series: sticky, stratified by department and demand class, kept as it grows, and
the only series the canary serves."""

import datetime as dt
from collections import Counter

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django_fsm import TransitionNotAllowed

from forecasting.models import Product, Sale, SeriesDemandClass, Store
from mlops.models import ModelVersion, RolloutEvent, RolloutPlan
from mlops.rollout_selectors import rollout_detail
from mlops.services.rollouts import act_on_rollout, start_canary
from mlops.services.routing import RoutingTable
from tests.mlops.factories import ModelVersionFactory

Status = ModelVersion.Status
DAY = dt.date(2026, 3, 2)
# Products per department; with 6 stores: 240, 150 and 90 series.
DEPARTMENTS = {"Grocery": 40, "Apparel": 25, "Electronics": 15}
CLASSES = ("smooth", "erratic", "intermittent", "lumpy")


@pytest.fixture
def shop():
    """Every series sold yesterday; demand classes spread unevenly over the series."""
    stores = [Store.objects.create(code=f"S{i}") for i in range(6)]
    products = [
        Product.objects.create(sku=f"{department[:2]}{i:03d}", department=department)
        for department, count in DEPARTMENTS.items()
        for i in range(count)
    ]
    series = [(store, product) for store in stores for product in products]
    Sale.objects.bulk_create(
        Sale(store=s, product=p, date=DAY - dt.timedelta(days=1), quantity=3) for s, p in series
    )
    SeriesDemandClass.objects.bulk_create(
        SeriesDemandClass(
            store=s, product=p, demand_class=CLASSES[(i * 7) % 5 % 4], cv2=0.1, as_of=DAY
        )
        for i, (s, p) in enumerate(series)
    )
    return series


@pytest.fixture
def plan(shop, manager):
    ModelVersionFactory(status=Status.CHAMPION)
    candidate = ModelVersionFactory()
    return start_canary(
        version=candidate,
        actor=manager,
        reason="a tenth first",
        initial_share=0.1,
        steps=[0.25, 1.0],
        bake_days=2,
        on=DAY,
    )


def shares_by(plan, key) -> dict:
    """The plan's share of the series of each group; `key(department, demand_class)`."""
    classes = {
        (store, product): demand_class
        for store, product, demand_class in SeriesDemandClass.objects.values_list(
            "store_id", "product_id", "demand_class"
        )
    }
    members = set(plan.series.values_list("store_id", "product_id"))
    every, chosen = Counter(), Counter()
    for store, product, department in Sale.objects.values_list(
        "store_id", "product_id", "product__department"
    ):
        group = key(department, classes[(store, product)])
        every[group] += 1
        chosen[group] += (store, product) in members
    return {group: chosen[group] / every[group] for group in every}


def test_at_ten_percent_each_department_holds_ten_to_fifteen_percent_of_its_series(plan):
    by_department = shares_by(plan, lambda department, _: department)

    assert set(by_department) == set(DEPARTMENTS)
    for department, share in by_department.items():
        assert 0.10 <= share <= 0.15, (department, share)
    # Within a department the demand classes are represented in proportion.
    by_class = shares_by(plan, lambda department, demand_class: (department, demand_class))
    assert all(0.0 < share <= 0.2 for share in by_class.values()), by_class


def test_growing_the_share_keeps_the_earlier_series_and_routing_serves_exactly_them(plan, manager):
    first = set(plan.series.values_list("store_id", "product_id"))

    act_on_rollout(plan=plan, action="skip", actor=manager, reason="looks fine, go on")

    plan.refresh_from_db()
    grown = set(plan.series.values_list("store_id", "product_id"))
    assert plan.step == 1 and first < grown
    by_department = shares_by(plan, lambda department, _: department)
    assert all(0.25 <= share <= 0.30 for share in by_department.values()), by_department
    table = RoutingTable.load(name="demand_forecast")
    served = {
        (s.pk, p.pk)
        for s, p in ((s, p) for s in Store.objects.all() for p in Product.objects.all())
        if table.route(store_id=s.pk, product_id=p.pk, department=p.department).version.pk
        == plan.version_id
    }
    assert served == grown
    skip = plan.events.get(kind=RolloutEvent.Kind.SKIPPED)
    assert skip.actor_label == "manager" and skip.reason == "looks fine, go on"


def test_the_timeline_and_the_plan_page_count_the_canary_series_of_each_department_alike(
    plan, manager
):
    started = plan.events.get(kind=RolloutEvent.Kind.STARTED)
    # 10% of 150, 90 and 240 series, each department rounded up on its own.
    tenth = {"Apparel": 15, "Electronics": 9, "Grocery": 24}
    assert started.evidence["series"] == rollout_detail(plan)["series"] == tenth

    act_on_rollout(plan=plan, action="skip", actor=manager, reason="go on")

    plan.refresh_from_db()
    # 25%: 37.5, 22.5 and 60 rounded up.
    quarter = {"Apparel": 38, "Electronics": 23, "Grocery": 60}
    assert rollout_detail(plan)["series"] == quarter
    assert Counter(plan.series.values_list("department", flat=True)) == quarter


def test_illegal_moves_and_bad_plans_are_refused_and_change_nothing(plan, manager, viewer):
    act_on_rollout(plan=plan, action="pause", actor=manager, reason="hold for the holidays")
    with pytest.raises(TransitionNotAllowed, match="allowed from paused: abort, resume"):
        act_on_rollout(plan=plan, action="skip", actor=manager, reason="no")
    with pytest.raises(TransitionNotAllowed, match="already runs"):
        start_canary(
            version=ModelVersionFactory(), actor=manager, reason="x", initial_share=0.1, on=DAY
        )
    with pytest.raises(ValidationError) as refused:
        start_canary(
            version=ModelVersionFactory(),
            actor=manager,
            reason="x",
            initial_share=0.5,
            steps=[0.25],
            guardrails=[{"metric": "mae", "tolerance": 1}],
            on=DAY,
        )
    assert set(refused.value.message_dict) == {"steps", "guardrails"}
    with pytest.raises(PermissionDenied):
        act_on_rollout(plan=plan, action="abort", actor=viewer, reason="not mine")
    plan.refresh_from_db()
    assert plan.status == RolloutPlan.Status.PAUSED
    assert list(plan.events.values_list("kind", flat=True)) == ["started", "paused"]


def all_at_once(version, manager, *, reason):
    """A one-step canary plan of every series the version would serve, started on DAY."""
    return start_canary(
        version=version,
        actor=manager,
        reason=reason,
        initial_share=1.0,
        steps=[],
        bake_days=1,
        on=DAY,
    )


def test_a_global_canarys_series_leave_out_a_department_its_own_champion_serves(shop, manager):
    ModelVersionFactory(status=Status.CHAMPION)
    ModelVersionFactory(segment="department:Electronics", status=Status.CHAMPION)
    candidate = ModelVersionFactory()

    plan = all_at_once(candidate, manager, reason="everything but Electronics")

    departments = Counter(plan.series.values_list("product__department", flat=True))
    assert departments == {"Grocery": 6 * 40, "Apparel": 6 * 25}


@pytest.mark.parametrize(
    ("canary_days_older", "refreshed"), [(6, True), (0, False)], ids=["older", "as-fresh"]
)
def test_a_canary_older_than_the_champion_it_replaces_is_refreshed_at_once(
    shop, manager, django_capture_on_commit_callbacks, canary_days_older, refreshed
):
    from mlops.models import ModelRetrainingLog
    from mlops.services.rollouts import act_on_rollout

    # The champion was refreshed while the canary ran.
    ModelVersionFactory(status=Status.CHAMPION, training_end=DAY - dt.timedelta(days=1))
    candidate = ModelVersionFactory(training_end=DAY - dt.timedelta(days=1 + canary_days_older))
    plan = all_at_once(candidate, manager, reason="all at once")

    with django_capture_on_commit_callbacks(execute=False):
        act_on_rollout(plan=plan, action="skip", actor=manager, reason="enough seen")

    assert ModelVersion.objects.get(pk=candidate.pk).status == Status.CHAMPION
    logs = list(ModelRetrainingLog.objects.all())
    assert len(logs) == int(refreshed)
    if refreshed:
        (log,) = logs
        assert (log.trigger, log.status, log.segment) == ("scheduled", "queued", "global")
        assert log.trigger_metadata["rollout_plan"] == plan.pk
        assert f"{candidate.version} was promoted from its canary" in log.trigger_metadata["reason"]
