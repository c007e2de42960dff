"""The canary section of a version's review page: a manager starts a canary with a reason, sees
today's step and the timeline, and pauses it; a viewer sees the same but no button."""

import datetime as dt

from forecasting.models import Product, Sale, Store
from mlops.models import ModelVersion, RolloutPlan
from tests.admin.conftest import logged_in
from tests.mlops.factories import ModelVersionFactory


def _shop():
    yesterday = dt.date.today() - dt.timedelta(days=1)
    for i in range(4):
        store = Store.objects.create(code=f"S{i}")
        for j in range(5):
            product, _ = Product.objects.get_or_create(sku=f"G{j}", department="Grocery")
            Sale.objects.create(store=store, product=product, date=yesterday, quantity=2)


def test_a_manager_starts_and_pauses_a_canary_from_the_review_page(manager, viewer):
    _shop()
    ModelVersionFactory(status=ModelVersion.Status.CHAMPION)
    candidate = ModelVersionFactory()
    review = f"/admin/mlops/modelversion/{candidate.pk}/change/"
    client = logged_in("maria")
    assert 'id="canary-start"' in client.get(review).content.decode()

    started = client.post(
        f"/admin/mlops/rolloutplan/start/{candidate.pk}/",
        {
            "initial_share": "0.25",
            "steps": "0.5, 1.0",
            "bake_days": "2",
            "reason": "try it on a quarter",
            "tolerance_wape": "5",
            "tolerance_bias": "5",
        },
    )

    assert started.status_code == 302, started.content.decode()[:2000]
    plan = RolloutPlan.objects.get(version=candidate)
    assert plan.shares == [0.25, 0.5, 1.0] and len(plan.guardrails) == 2
    page = client.get(review).content.decode()
    assert "Today's step" in page and "1 of 3" in page and "try it on a quarter" in page
    assert 'id="canary-pause"' in page
    paused = client.post(
        f"/admin/mlops/rolloutplan/{plan.pk}/pause/", {"reason": "wait for the holidays"}
    )
    assert paused.status_code == 302
    plan.refresh_from_db()
    assert plan.status == RolloutPlan.Status.PAUSED
    assert "wait for the holidays" in client.get(review).content.decode()

    as_viewer = logged_in(viewer.username).get(review).content.decode()
    assert "1 of 3" in as_viewer and 'id="canary-resume"' not in as_viewer
    denied = logged_in(viewer.username).post(
        f"/admin/mlops/rolloutplan/{plan.pk}/resume/", {"reason": "no"}
    )
    assert denied.status_code == 403
