"""Scenario 3 end to end: a department segmentation proposed, approved, trained, shadow-tested on
generated days, judged by the system and partially adopted (Electronics only)."""

import datetime as dt

from alerts.models import MLAlert
from experiments.models import ModelExperiment
from experiments.selectors import experiment_events, experiment_results
from experiments.services import (
    approve_experiment,
    complete_experiment,
    propose_experiment,
    start_experiment,
    start_shadow_testing,
)
from forecasting.models import Product, Store
from forecasting.synthetic import generate_sales
from mlops.models import ModelVersion, ShadowPrediction, Trigger
from mlops.selectors import transition_history
from mlops.services import forecast_next_days, retrain_forecast_model, select_model_for_request
from mlops.services.daily_backtest import backtest_yesterday
from tests.mlops.factories import load_sales

# 45 series over 400 days: Electronics (weekend-heavy, promotion-driven) is 9 of them.
SALES = {"stores": 3, "products": 15, "days": 400, "seed": 7}
# Shallow trees: a global model of this size averages Electronics with Grocery's flat pattern,
# which is the hypothesis the experiment tests; few trees keep the test fast. Measured outside
# the database on these sales (seed 7) and four weekly forecasts: department models beat it by
# 18% in MAE on Electronics, 1% on Apparel, 0% on Grocery (seeds 3, 5, 11: Electronics 16-32%,
# Apparel 9-12%, Grocery -1 to 0.5%).
QUICK_XGBOOST = {"n_estimators": 30, "max_depth": 3, "calibration_windows": 1}
SHADOW_WEEKS = 4
DEPARTMENTS = ("Apparel", "Electronics", "Grocery")
Status = ModelVersion.Status


def moves(version: ModelVersion) -> list[tuple[str, str, str]]:
    return [(m.from_status, m.to_status, m.actor_label) for m in transition_history(version)]


def test_department_segmentation_is_trained_shadow_tested_and_electronics_adopted(
    manager, scientist
):
    frame = generate_sales(**SALES)
    last_day = frame["date"].max().date()
    shadow_start = last_day - dt.timedelta(days=7 * SHADOW_WEEKS - 1)
    load_sales(frame[frame["date"] < str(shadow_start)])
    first = retrain_forecast_model(
        trigger=Trigger.MANUAL,
        algorithm="xgboost",
        hyperparameters=QUICK_XGBOOST,
        window_days=365,
    )
    global_champion = first.resulting_version
    assert global_champion.status == Status.CHAMPION, first.error

    # Week 1: the data scientist proposes, the manager approves.
    experiment = propose_experiment(
        actor=scientist,
        name="Department-tiered forecasting",
        hypothesis="Electronics demand differs from Grocery: its own model improves MAE by 12%.",
        experiment_type="segmentation",
        configuration={"segments": list(DEPARTMENTS)},
        success_metric="mae",
        expected_improvement_pct=12.0,
    )
    approve_experiment(experiment=experiment, actor=manager, note="Go ahead")

    # Weeks 2-3: one model per department, registered, none serving.
    start_experiment(experiment=experiment, actor=scientist)

    versions = {version.segment: version for version in experiment.model_versions.all()}
    assert sorted(versions) == [f"department:{name}" for name in DEPARTMENTS]
    for version in versions.values():
        assert version.status == Status.CHALLENGER
        assert version.trigger == Trigger.EXPERIMENT and version.created_by == scientist
        assert version.algorithm == "xgboost"
        assert version.training_end == shadow_start - dt.timedelta(days=1)
    assert ModelVersion.objects.get(status=Status.CHAMPION).pk == global_champion.pk
    electronics_model = versions["department:Electronics"]

    # Weeks 4-7: shadow test over four generated weeks; sales arrive, actuals are filled.
    start_shadow_testing(experiment=experiment, actor=scientist)
    load_sales(frame[frame["date"] >= str(shadow_start)])
    for week in range(SHADOW_WEEKS):
        summary = forecast_next_days(day=shadow_start + dt.timedelta(days=7 * week))
        assert summary.shadow_rows > 0 and summary.unrouted_series == 0
    # Each morning the T-1 backtest puts the day's sales beside that day's shadow answers.
    for offset in range(7 * SHADOW_WEEKS):
        backtest_yesterday(day=shadow_start + dt.timedelta(days=offset))
    assert ShadowPrediction.objects.filter(actual__isnull=False).count() == 45 * 7 * SHADOW_WEEKS

    # The system's results, per department, from the shadow predictions.
    results = experiment_results(experiment=experiment)
    segments = results["segments"]
    for name in DEPARTMENTS:
        result = segments[f"department:{name}"]
        assert result["source"] == "shadow"
        assert result["n_days"] == 7 * SHADOW_WEEKS
        assert [v["id"] for v in result["baseline_versions"]] == [global_champion.pk]
    electronics = segments["department:Electronics"]
    assert electronics["n_series"] == 9
    assert electronics["improvement_pct"]["mae"] >= 12.0
    assert electronics["meets_success_criterion"] is True
    assert not segments["department:Grocery"]["meets_success_criterion"]
    assert not segments["department:Apparel"]["meets_success_criterion"]

    # Week 8: partial adoption of the Electronics tier only.
    complete_experiment(
        experiment=experiment,
        actor=scientist,
        decision="partial_adopt",
        rationale="Electronics exceeded the target; Grocery and Apparel did not.",
        adopted_versions=[electronics_model],
    )

    experiment.refresh_from_db()
    assert experiment.status == ModelExperiment.Status.COMPLETED
    assert experiment.results["segments"]["department:Electronics"]["meets_success_criterion"]
    statuses = {
        segment: ModelVersion.objects.get(pk=version.pk).status
        for segment, version in versions.items()
    }
    assert statuses == {
        "department:Apparel": Status.ARCHIVED,
        "department:Electronics": Status.CHAMPION,
        "department:Grocery": Status.ARCHIVED,
    }
    assert ModelVersion.objects.get(pk=global_champion.pk).status == Status.CHAMPION

    # An Electronics product is now served by the Electronics champion; the others as before.
    store = Store.objects.first()
    for name in DEPARTMENTS:
        product = Product.objects.filter(department=name).first()
        served = select_model_for_request(store=store, product=product).version
        expected = electronics_model if name == "Electronics" else global_champion
        assert served.pk == expected.pk, name

    # Every step is logged with who took it.
    assert [
        (e.from_status, e.to_status, e.actor_label)
        for e in experiment_events(experiment=experiment)
    ] == [
        ("", "proposed", "scientist"),
        ("proposed", "approved", "manager"),
        ("approved", "in_progress", "scientist"),
        ("in_progress", "in_progress", "scientist"),  # the versions it trained
        ("in_progress", "shadow_testing", "scientist"),
        ("shadow_testing", "completed", "scientist"),
    ]
    assert moves(electronics_model) == [
        ("candidate", "challenger", "system"),  # the registry: experiment retrains wait
        ("challenger", "challenger", "scientist"),  # shadow test started
        ("challenger", "champion", "system"),  # promoted on the adopter's behalf
    ]
    promotion = transition_history(electronics_model).last()
    assert promotion.evidence["experiment"]["decided_by"] == "scientist"
    assert promotion.evidence["experiment"]["approved_by"] == "manager"
    for segment in ("department:Apparel", "department:Grocery"):
        assert moves(versions[segment])[-1] == ("challenger", "archived", "system")
    alert = MLAlert.objects.get(experiment=experiment)
    assert (alert.alert_type, alert.severity) == ("experiment_complete", "info")
