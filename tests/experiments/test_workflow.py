"""The experiment workflow step by step: who may take each step, what it checks, what it leaves."""

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django_fsm import TransitionNotAllowed

from alerts.models import MLAlert
from experiments.models import ModelExperiment
from experiments.selectors import experiment_results
from experiments.services import (
    ExperimentTrainingError,
    approve_experiment,
    complete_experiment,
    propose_experiment,
    reject_experiment,
    start_experiment,
    start_shadow_testing,
)
from mlops.models import ModelVersion
from mlops.services import select_model_for_request
from tests.experiments.factories import ExperimentFactory, shadow_rows
from tests.forecasting.factories import ProductFactory, StoreFactory
from tests.mlops.factories import ModelVersionFactory

Status = ModelExperiment.Status
VersionStatus = ModelVersion.Status
FIRST_DAY = dt.date(2025, 11, 1)


@pytest.fixture
def champion():
    return ModelVersionFactory(status=VersionStatus.CHAMPION, algorithm="xgboost")


@pytest.fixture
def departments():
    return {name: ProductFactory(department=name) for name in ("Electronics", "Grocery", "Apparel")}


def propose(actor, **overrides) -> ModelExperiment:
    fields = {
        "name": "Department-tiered forecasting",
        "hypothesis": "Electronics demand differs from Grocery: its own model beats the global.",
        "experiment_type": "segmentation",
        "configuration": {"segments": ["Electronics", "Grocery", "Apparel"]},
        "expected_improvement_pct": 12.0,
    }
    fields.update(overrides)
    return propose_experiment(actor=actor, **fields)


def configuration_errors(actor, **overrides) -> list[str]:
    with pytest.raises(ValidationError) as refused:
        propose(actor, **overrides)
    return refused.value.message_dict["configuration"]


# -- proposing ------------------------------------------------------------------------------------


def test_data_scientist_proposes_and_the_proposal_is_logged(scientist, champion, departments):
    experiment = propose(scientist)

    experiment.refresh_from_db()
    assert experiment.status == Status.PROPOSED
    assert experiment.proposed_by == scientist
    assert experiment.configuration == {"segments": ["Electronics", "Grocery", "Apparel"]}
    (event,) = experiment.events.all()
    assert (event.from_status, event.to_status, event.actor) == ("", "proposed", scientist)


def test_viewer_cannot_propose_and_is_told_which_role_can(viewer, champion, departments):
    with pytest.raises(PermissionDenied, match="data_scientist"):
        propose(viewer)

    assert not ModelExperiment.objects.exists()


def test_segments_must_be_departments_that_exist(scientist, champion, departments):
    problems = configuration_errors(
        scientist, configuration={"segments": ["Electronics", "Toys"], "algorithm": "prophet"}
    )

    assert any(
        "Toys" in problem and "Apparel, Electronics, Grocery" in problem for problem in problems
    )
    assert any("prophet" in problem and "xgboost" in problem for problem in problems)


def test_every_bad_field_is_named_at_once(scientist, champion, departments):
    with pytest.raises(ValidationError) as refused:
        propose(scientist, name="", success_metric="rmse", expected_improvement_pct=-1)

    assert {"name", "success_metric", "expected_improvement_pct"} <= set(refused.value.message_dict)
    assert not ModelExperiment.objects.exists()


def test_feature_engineering_is_refused_while_no_model_family_selects_features(
    scientist, champion, departments
):
    problems = configuration_errors(
        scientist,
        experiment_type="feature_engineering",
        configuration={"features": ["google_trends"]},
    )

    assert problems == [
        "features: none of the model families (intermittent, lstm, seasonal_naive, xgboost) "
        "supports choosing its features yet, so a feature-engineering experiment cannot be "
        "trained."
    ]


def test_hyperparameters_must_be_known_to_the_champions_algorithm(scientist, champion, departments):
    problems = configuration_errors(
        scientist,
        experiment_type="hyperparameters",
        configuration={"hyperparameters": {"trees": 9}},
    )

    assert len(problems) == 1 and "trees" in problems[0] and "n_estimators" in problems[0]
    experiment = propose(
        scientist,
        experiment_type="hyperparameters",
        configuration={"hyperparameters": {"max_depth": 4}},
    )
    assert experiment.status == Status.PROPOSED


@pytest.mark.parametrize("window_days", [7, "90", 99999, True])
def test_training_window_must_be_whole_days_in_range(scientist, champion, window_days):
    problems = configuration_errors(
        scientist, experiment_type="training_window", configuration={"window_days": window_days}
    )

    assert len(problems) == 1 and problems[0].startswith("window_days:")


def test_configuration_keys_the_type_does_not_use_are_refused(scientist, champion, departments):
    problems = configuration_errors(
        scientist,
        experiment_type="algorithm",
        configuration={"algorithm": "xgboost", "segments": []},
    )

    assert problems == [
        "segments: not used in algorithm experiments; they take algorithm, hyperparameters."
    ]


def test_an_experiment_needs_a_champion_to_compare_with(scientist, departments):
    with pytest.raises(ValidationError) as refused:
        propose(scientist)

    assert "no champion" in refused.value.message_dict["model_name"][0]


# -- review ---------------------------------------------------------------------------------------


def test_data_scientist_cannot_approve_and_is_told_which_role_can(scientist):
    experiment = ExperimentFactory(proposed_by=scientist)

    with pytest.raises(PermissionDenied, match="ml_manager"):
        approve_experiment(experiment=experiment, actor=scientist)

    experiment.refresh_from_db()
    assert experiment.status == Status.PROPOSED
    assert not experiment.events.exists()


def test_manager_approves_and_the_approval_is_logged(manager):
    experiment = ExperimentFactory()

    approve_experiment(experiment=experiment, actor=manager, note="Worth two weeks of shadow")

    assert experiment.status == Status.APPROVED
    assert experiment.approved_by == manager and experiment.approved_at is not None
    assert experiment.review_note == "Worth two weeks of shadow"
    (event,) = experiment.events.all()
    assert (event.from_status, event.to_status, event.actor_label) == (
        "proposed",
        "approved",
        "manager",
    )


def test_rejection_needs_a_reason_and_is_final(manager, scientist):
    experiment = ExperimentFactory()
    with pytest.raises(ValidationError):
        reject_experiment(experiment=experiment, actor=manager, note=" ")

    reject_experiment(experiment=experiment, actor=manager, note="No capacity this quarter")

    assert experiment.status == Status.REJECTED
    with pytest.raises(TransitionNotAllowed, match="allowed from rejected: nothing"):
        start_experiment(experiment=experiment, actor=scientist)


@pytest.mark.parametrize(
    ("status", "allowed"),
    [
        (Status.PROPOSED, "approve, reject"),
        (Status.APPROVED, "start"),
        (Status.IN_PROGRESS, "start_shadow_testing"),
    ],
)
def test_completing_an_experiment_not_in_shadow_testing_is_refused_with_the_allowed_moves(
    scientist, status, allowed
):
    experiment = ExperimentFactory(status=status)

    with pytest.raises(TransitionNotAllowed) as refused:
        complete_experiment(
            experiment=experiment, actor=scientist, decision="reject", rationale="Too early"
        )

    assert str(refused.value).endswith(f"allowed from {status}: {allowed}.")
    assert refused.value.object.pk == experiment.pk
    assert ModelExperiment.objects.get(pk=experiment.pk).status == status


def test_failed_training_returns_the_experiment_to_approved_and_says_why(scientist, champion):
    # No sales in the tenant: every retrain fails.
    experiment = ExperimentFactory(status=Status.APPROVED, configuration={"segments": ["Grocery"]})

    with pytest.raises(ExperimentTrainingError, match="There are no sales to train on"):
        start_experiment(experiment=experiment, actor=scientist)

    experiment.refresh_from_db()
    assert experiment.status == Status.APPROVED
    assert not experiment.model_versions.exists()
    started, failed = experiment.events.all()
    assert (started.to_status, started.actor_label) == ("in_progress", "scientist")
    assert (failed.from_status, failed.to_status, failed.actor_label) == (
        "in_progress",
        "approved",
        "system",
    )
    assert "department:Grocery: ValueError: There are no sales" in failed.note


# -- shadow testing -------------------------------------------------------------------------------


def test_shadow_testing_puts_candidates_in_shadow_through_the_registry(scientist):
    experiment = ExperimentFactory(status=Status.IN_PROGRESS)
    version = ModelVersionFactory(segment="department:Electronics")
    experiment.model_versions.add(version)

    start_shadow_testing(experiment=experiment, actor=scientist)

    version.refresh_from_db()
    assert version.status == VersionStatus.SHADOW
    move = version.transitions.get()
    assert (move.from_status, move.to_status, move.actor) == ("candidate", "shadow", scientist)
    assert experiment.status == Status.SHADOW_TESTING
    assert experiment.shadow_started_at is not None
    assert experiment.events.get().actor == scientist


def test_shadow_testing_of_challengers_keeps_their_status_and_logs_who_started_it(scientist):
    experiment = ExperimentFactory(status=Status.IN_PROGRESS)
    version = ModelVersionFactory(
        segment="department:Electronics",
        status=VersionStatus.CHALLENGER,
        routing_mode=ModelVersion.RoutingMode.SHADOW,
    )
    experiment.model_versions.add(version)

    start_shadow_testing(experiment=experiment, actor=scientist)

    version.refresh_from_db()
    assert version.status == VersionStatus.CHALLENGER
    move = version.transitions.get()
    assert (move.from_status, move.to_status, move.actor) == ("challenger", "challenger", scientist)
    assert f"experiment #{experiment.pk}" in move.reason


def test_shadow_testing_needs_trained_versions(scientist):
    experiment = ExperimentFactory(status=Status.IN_PROGRESS)

    with pytest.raises(ValidationError, match="no trained versions"):
        start_shadow_testing(experiment=experiment, actor=scientist)

    assert ModelExperiment.objects.get(pk=experiment.pk).status == Status.IN_PROGRESS


# -- results and decision -------------------------------------------------------------------------


def make_shadow_tested(manager, scientist, *, stores: int):
    """A segmentation in shadow testing: the Electronics model halves the champion's error over
    14 days, the Grocery model doubles it, on `stores` series of each department."""
    champion = ModelVersionFactory(status=VersionStatus.CHAMPION)
    store_rows = [StoreFactory() for _ in range(stores)]
    electronics = ProductFactory(department="Electronics")
    grocery = ProductFactory(department="Grocery")
    versions = {
        segment: ModelVersionFactory(
            segment=segment,
            status=VersionStatus.CHALLENGER,
            routing_mode=ModelVersion.RoutingMode.SHADOW,
            trigger="experiment",
        )
        for segment in ("department:Electronics", "department:Grocery")
    }
    days = 14
    for store in store_rows:
        shadow_rows(
            version=versions["department:Electronics"],
            served_by=champion,
            store=store,
            product=electronics,
            first_day=FIRST_DAY,
            actual=[10.0] * days,
            experimental=[9.0] * days,
            served=[8.0] * days,
        )
        shadow_rows(
            version=versions["department:Grocery"],
            served_by=champion,
            store=store,
            product=grocery,
            first_day=FIRST_DAY,
            actual=[10.0] * days,
            experimental=[9.0] * days,
            served=[9.5] * days,
        )
    experiment = ExperimentFactory(
        status=Status.SHADOW_TESTING, approved_by=manager, proposed_by=scientist
    )
    experiment.model_versions.add(*versions.values())
    return {
        "experiment": experiment,
        "champion": champion,
        "store": store_rows[0],
        "electronics": electronics,
        "grocery": grocery,
        **versions,
    }


@pytest.fixture
def shadow_tested(manager, scientist):
    """The segmentation on one series per department."""
    return make_shadow_tested(manager, scientist, stores=1)


@pytest.fixture
def gated_shadow_tested(manager, scientist):
    """The segmentation on eight series per department: enough for the paired test over series
    that adoption needs (confidence >= the tenant's 0.95)."""
    return make_shadow_tested(manager, scientist, stores=8)


def test_results_compare_each_version_with_the_champion_that_served_the_same_points(
    shadow_tested,
):
    results = experiment_results(experiment=shadow_tested["experiment"])

    electronics = results["segments"]["department:Electronics"]
    assert electronics["source"] == "shadow"
    assert (electronics["n_points"], electronics["n_days"], electronics["n_series"]) == (14, 14, 1)
    assert electronics["experimental"]["mae"] == pytest.approx(1.0)
    assert electronics["baseline"]["mae"] == pytest.approx(2.0)
    assert electronics["improvement_pct"]["mae"] == pytest.approx(50.0)
    assert electronics["improvement_pct"]["wape"] == pytest.approx(50.0)
    assert electronics["baseline_versions"][0]["id"] == shadow_tested["champion"].pk
    assert electronics["meets_success_criterion"] is True
    grocery = results["segments"]["department:Grocery"]
    assert grocery["improvement_pct"]["mae"] == pytest.approx(-100.0)
    assert grocery["meets_success_criterion"] is False
    # Overall: experimental MAE 1.0 against (2.0 + 0.5) / 2 on the 28 points.
    assert results["overall"]["n_points"] == 28
    assert results["overall"]["improvement_pct"]["mae"] == pytest.approx(20.0)


def test_data_scientist_partially_adopts_a_version_that_met_the_approved_criterion(
    gated_shadow_tested, scientist
):
    experiment = gated_shadow_tested["experiment"]
    adopted, other = (
        gated_shadow_tested["department:Electronics"],
        gated_shadow_tested["department:Grocery"],
    )

    complete_experiment(
        experiment=experiment,
        actor=scientist,
        decision="partial_adopt",
        rationale="Adopt the Electronics tier only",
        adopted_versions=[adopted],
    )

    adopted.refresh_from_db()
    other.refresh_from_db()
    assert adopted.status == VersionStatus.CHAMPION
    assert other.status == VersionStatus.ARCHIVED
    assert ModelVersion.objects.get(pk=gated_shadow_tested["champion"].pk).status == "champion"
    promotion = adopted.transitions.get(to_status="champion")
    assert promotion.actor is None and promotion.actor_label == "system"
    assert "decided by scientist" in promotion.reason and "approved by manager" in promotion.reason
    assert promotion.evidence["experiment"]["experiment_id"] == experiment.pk
    assert promotion.evidence["results"]["improvement_pct"]["mae"] == pytest.approx(50.0)
    assert experiment.status == Status.COMPLETED
    assert (experiment.decision, experiment.completed_by) == ("partial_adopt", scientist)
    assert experiment.results["segments"]["department:Electronics"]["meets_success_criterion"]
    assert [v["id"] for v in experiment.results["decision"]["adopted"]] == [adopted.pk]
    alert = MLAlert.objects.get(experiment=experiment)
    assert (alert.alert_type, alert.severity) == ("experiment_complete", "info")
    assert "department:Electronics: mae 50.0% better (shadow), adopted" in alert.message
    assert experiment.events.order_by("-pk").first().actor == scientist
    # Only what serves Electronics changed.
    served = select_model_for_request(
        store=gated_shadow_tested["store"], product=gated_shadow_tested["electronics"]
    ).version
    assert served.pk == adopted.pk
    served = select_model_for_request(
        store=gated_shadow_tested["store"], product=gated_shadow_tested["grocery"]
    ).version
    assert served.pk == gated_shadow_tested["champion"].pk


def test_data_scientist_cannot_adopt_a_version_that_missed_the_criterion_and_nothing_changes(
    gated_shadow_tested, scientist
):
    experiment = gated_shadow_tested["experiment"]

    with pytest.raises(
        PermissionDenied, match=r"does not pass the gate.*needs the ml_manager role"
    ):
        complete_experiment(
            experiment=experiment, actor=scientist, decision="adopt", rationale="Adopt both"
        )

    assert ModelExperiment.objects.get(pk=experiment.pk).status == Status.SHADOW_TESTING
    for segment in ("department:Electronics", "department:Grocery"):
        assert ModelVersion.objects.get(pk=gated_shadow_tested[segment].pk).status == "challenger"
    assert not MLAlert.objects.exists()


def test_manager_may_adopt_against_the_criterion_and_the_promotion_is_in_their_name(
    gated_shadow_tested, manager
):
    experiment = gated_shadow_tested["experiment"]
    # Against the gate, adopting is an override: it needs a reason.
    with pytest.raises(ValidationError, match="adopting it is an override: say why"):
        complete_experiment(
            experiment=experiment,
            actor=manager,
            decision="adopt",
            rationale="Grocery is worse in shadow but we want one model per department",
        )
    assert ModelExperiment.objects.get(pk=experiment.pk).status == Status.SHADOW_TESTING

    complete_experiment(
        experiment=experiment,
        actor=manager,
        decision="adopt",
        rationale="Grocery is worse in shadow but we want one model per department",
        override_reason="One model per department simplifies the planners' reviews",
    )

    for segment in ("department:Electronics", "department:Grocery"):
        version = ModelVersion.objects.get(pk=gated_shadow_tested[segment].pk)
        assert version.status == VersionStatus.CHAMPION
        assert version.transitions.get(to_status="champion").actor == manager
    grocery = ModelVersion.objects.get(pk=gated_shadow_tested["department:Grocery"].pk)
    move = grocery.transitions.get(to_status="champion")
    assert move.evidence["kind"] == "override" and grocery.decision_kind == "override"
    assert "One model per department" in move.reason
    electronics = ModelVersion.objects.get(pk=gated_shadow_tested["department:Electronics"].pk)
    assert electronics.decision_kind == "review"  # it passed the gate


def test_rejecting_archives_every_version_and_keeps_the_champion(shadow_tested, scientist):
    complete_experiment(
        experiment=shadow_tested["experiment"],
        actor=scientist,
        decision="reject",
        rationale="Not worth two more models",
    )

    for segment in ("department:Electronics", "department:Grocery"):
        version = ModelVersion.objects.get(pk=shadow_tested[segment].pk)
        assert version.status == VersionStatus.ARCHIVED
        assert "Not adopted by experiment" in version.transitions.get(to_status="archived").reason
    assert ModelVersion.objects.get(pk=shadow_tested["champion"].pk).status == "champion"
    assert shadow_tested["experiment"].decision == "reject"


@pytest.mark.parametrize(
    ("decision", "adopted", "message"),
    [
        ("partial_adopt", "none", "Name the versions"),
        ("partial_adopt", "champion", "are not this experiment's"),
        ("partial_adopt", "both", "the decision is adopt"),
        ("reject", "both", "adopts no version"),
        ("keep", None, "Choose one of"),
    ],
)
def test_a_decision_must_fit_the_versions_it_names(
    shadow_tested, scientist, decision, adopted, message
):
    choices = {
        "none": [],
        "champion": [shadow_tested["champion"]],
        "both": [shadow_tested["department:Electronics"], shadow_tested["department:Grocery"]],
    }

    with pytest.raises(ValidationError, match=message):
        complete_experiment(
            experiment=shadow_tested["experiment"],
            actor=scientist,
            decision=decision,
            rationale="Because",
            adopted_versions=choices.get(adopted, adopted),
        )

    assert ModelExperiment.objects.get(pk=shadow_tested["experiment"].pk).status == "shadow_testing"


def test_a_proposal_may_leave_its_recipe_open_but_cannot_start_without_it(tenant):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.exceptions import ValidationError as DjangoValidationError

    from experiments.services import approve_experiment, propose_experiment, start_experiment
    from tests.mlops.factories import ModelVersionFactory

    ModelVersionFactory(status="champion")
    users = {}
    for role in ("data_scientist", "ml_manager"):
        user = get_user_model().objects.create_user(f"{role}-open", password="x")
        user.groups.add(Group.objects.get(name=role))
        users[role] = user
    experiment = propose_experiment(
        actor=users["data_scientist"],
        name="Google Trends feature",
        hypothesis="Search interest leads demand by a week.",
        experiment_type="feature_engineering",
        configuration={},
        expected_improvement_pct=5,
    )
    approve_experiment(experiment=experiment, actor=users["ml_manager"])
    with pytest.raises(DjangoValidationError, match="features"):
        start_experiment(experiment=experiment, actor=users["data_scientist"])
    experiment.refresh_from_db()
    assert experiment.status == "approved"
