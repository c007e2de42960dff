"""Experiments in the admin: propose, approve / reject, start, shadow-test, complete, results."""

import datetime as dt
import re

import pytest

from experiments.models import ModelExperiment
from experiments.stored_results import store_experiment_results
from forecasting.models import Product, Store
from mlops.models import ModelVersion
from tests.admin.conftest import logged_in
from tests.experiments.factories import ExperimentFactory, shadow_rows
from tests.mlops.factories import ModelVersionFactory

Status = ModelExperiment.Status


def page_of(experiment):
    return f"/admin/experiments/modelexperiment/{experiment.pk}/change/"


def step(experiment, name):
    return f"/admin/experiments/modelexperiment/{experiment.pk}/step/{name}/"


def status_of(experiment):
    return ModelExperiment.objects.get(pk=experiment.pk).status


@pytest.fixture
def champion():
    return ModelVersionFactory(status="champion", algorithm="seasonal_naive")


@pytest.fixture
def departments():
    Product.objects.create(sku="TV-1", name="Television", department="Electronics")
    Product.objects.create(sku="MILK", name="Milk", department="Grocery")


def test_scientist_proposes_a_segmentation_from_the_form(champion, departments, scientist):
    client = logged_in("sam")
    form = client.get("/admin/experiments/modelexperiment/add/").content.decode()

    response = client.post(
        "/admin/experiments/modelexperiment/add/",
        {
            "name": "Electronics on its own",
            "hypothesis": "Electronics sells in bursts the global model smooths over.",
            "experiment_type": "segmentation",
            "model_name": "demand_forecast",
            "success_metric": "mae",
            "expected_improvement_pct": "8",
            "segments": ["Electronics"],
            "hyperparameters": "",
            "window_days": "400",  # ignored: a segmentation takes no window
        },
    )

    assert 'value="Electronics"' in form and 'value="Grocery"' in form
    experiment = ModelExperiment.objects.get()
    assert response.status_code == 302 and response["Location"] == page_of(experiment)
    assert experiment.status == Status.PROPOSED
    assert experiment.configuration == {"segments": ["Electronics"]}
    assert experiment.proposed_by.username == "sam"


def test_a_proposal_the_service_refuses_shows_why_and_saves_nothing(champion, scientist):
    response = logged_in("sam").post(
        "/admin/experiments/modelexperiment/add/",
        {
            "name": "Short window",
            "hypothesis": "Recent weeks matter most.",
            "experiment_type": "training_window",
            "model_name": "demand_forecast",
            "success_metric": "mae",
            "expected_improvement_pct": "5",
            "window_days": "7",
        },
    )

    assert response.status_code == 200
    assert "window_days: must be between 28 and 3650" in response.content.decode()
    assert not ModelExperiment.objects.exists()


def test_a_viewer_cannot_open_the_propose_form(viewer):
    assert logged_in("vera").get("/admin/experiments/modelexperiment/add/").status_code == 403


def test_only_a_manager_sees_approve_and_reject_and_approves_with_a_note(manager, scientist):
    experiment = ExperimentFactory()

    manager_page = logged_in("maria").get(page_of(experiment)).content.decode()
    scientist_page = logged_in("sam").get(page_of(experiment)).content.decode()
    response = logged_in("maria").post(step(experiment, "approve"), {"note": "Worth a try"})

    assert 'id="step-approve"' in manager_page and 'id="step-reject"' in manager_page
    assert 'id="step-approve"' not in scientist_page and 'id="step-reject"' not in scientist_page
    assert response.status_code == 302
    experiment.refresh_from_db()
    assert (experiment.status, experiment.approved_by.username, experiment.review_note) == (
        Status.APPROVED,
        "maria",
        "Worth a try",
    )


def test_a_forged_approval_by_a_scientist_is_refused(scientist):
    experiment = ExperimentFactory()

    response = logged_in("sam").post(step(experiment, "approve"), {"note": "me"})

    assert response.status_code == 403
    assert status_of(experiment) == Status.PROPOSED


def test_rejecting_without_a_note_changes_nothing(manager):
    experiment = ExperimentFactory()
    client = logged_in("maria")

    response = client.post(step(experiment, "reject"), {"note": ""}, follow=True)

    assert "Say why the experiment is rejected" in response.content.decode()
    assert status_of(experiment) == Status.PROPOSED


def test_scientist_starts_an_approved_experiment_which_queues_training(
    scientist, django_capture_on_commit_callbacks
):
    experiment = ExperimentFactory(status=Status.APPROVED)
    client = logged_in("sam")
    assert 'id="step-start"' in client.get(page_of(experiment)).content.decode()

    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(step(experiment, "start"), follow=True)

    assert len(queued) == 1  # the start task, sent once the request commits
    assert "training queued" in response.content.decode()


def _shadow_tested(*, champion, days=14, better=True):
    """An experiment in shadow testing with one Electronics version and `days` of shadow
    predictions with actuals (the version 20% closer when `better`)."""
    version = ModelVersionFactory(status="challenger", segment="department:Electronics")
    experiment = ExperimentFactory(
        status=Status.SHADOW_TESTING, configuration={"segments": ["Electronics"]}
    )
    experiment.model_versions.add(version)
    store = Store.objects.create(code="S1", name="Main street")
    for sku in ("TV-1", "TV-2", "TV-3"):
        product = Product.objects.create(sku=sku, name=sku, department="Electronics")
        actual = [10.0 + (day % 7) for day in range(days)]
        shadow_rows(
            version=version,
            served_by=champion,
            store=store,
            product=product,
            first_day=dt.date(2026, 3, 1),
            actual=actual,
            experimental=[a + (1.6 if better else 3.0) for a in actual],
            served=[a + 2.0 for a in actual],
        )
    return experiment, version


def test_scientist_completes_with_a_decision_and_the_page_shows_results_and_rationale(
    champion, scientist
):
    experiment, version = _shadow_tested(champion=champion, better=False)
    store_experiment_results(experiment=experiment)  # as the worker does; pages only read them
    client = logged_in("sam")
    assert 'id="step-complete"' in client.get(page_of(experiment)).content.decode()
    form = client.get(step(experiment, "complete")).content.decode()

    response = client.post(
        step(experiment, "complete"),
        {"decision": "reject", "rationale": "Worse on every weekday"},
    )

    assert 'id="experiment-results"' in form and "department:Electronics" in form
    assert response.status_code == 302
    experiment.refresh_from_db()
    assert experiment.status == Status.COMPLETED and experiment.decision == "reject"
    assert ModelVersion.objects.get(pk=version.pk).status == "archived"
    page = client.get(page_of(experiment)).content.decode()
    assert "Decision: Reject" in page and "Worse on every weekday" in page
    table = re.search(
        r'<table class="arena-table" id="experiment-results">.*?</table>', page, re.S
    )[0]
    assert "3.00 units" in table and "2.00 units" in table  # experimental vs baseline MAE
    assert "50.0% worse" in table and "✘ not met" in table
    chart = re.search(r'<svg class="bar-chart".*?</svg>', page, re.S)[0]
    assert chart.count('<rect class="bar ') == 2 + 2  # two bars and two legend keys
    assert "MAE (units per series-day)" in chart


def test_completion_refused_by_the_service_keeps_the_form_and_changes_nothing(champion, scientist):
    experiment, version = _shadow_tested(champion=champion, better=False)

    response = logged_in("sam").post(
        step(experiment, "complete"), {"decision": "adopt", "rationale": "Looks fine"}
    )

    assert response.status_code == 200
    assert "does not pass the gate" in response.content.decode()
    assert status_of(experiment) == Status.SHADOW_TESTING
    assert ModelVersion.objects.get(pk=version.pk).status == "challenger"


def test_viewer_sees_no_steps_on_an_experiment(viewer):
    experiment = ExperimentFactory(status=Status.APPROVED)

    page = logged_in("vera").get(page_of(experiment)).content.decode()

    assert 'id="experiment-steps"' not in page
    assert logged_in("vera").post(step(experiment, "start")).status_code == 403
    assert status_of(experiment) == Status.APPROVED
