"""Retraining end to end: log, train, register, judge, and promote or wait for a person."""

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage

from forecasting.artifacts import ArtifactIntegrityError
from forecasting.families import build_model
from forecasting.selectors import load_sales_panel
from mlops.models import ModelRetrainingLog, ModelTransition, ModelVersion, Trigger
from mlops.services import (
    evaluate_for_promotion,
    get_challenger_model,
    get_champion_model,
    load_model,
    promote_to_champion,
    register_model_version,
    retrain_forecast_model,
)
from tests.mlops.conftest import QUICK_XGBOOST

Status = ModelVersion.Status
LogStatus = ModelRetrainingLog.Status


def naive_champion() -> ModelVersion:
    """A seasonal-naive champion, made by the first scheduled retrain."""
    log = retrain_forecast_model(
        trigger=Trigger.SCHEDULED, algorithm="seasonal_naive", window_days=120
    )
    assert log.status == LogStatus.SUCCEEDED, log.error
    return log.resulting_version


def test_first_scheduled_retrain_becomes_champion_directly(sales):
    log = retrain_forecast_model(
        trigger=Trigger.SCHEDULED, algorithm="seasonal_naive", window_days=120
    )

    assert log.status == LogStatus.SUCCEEDED, log.error
    assert log.outcome == "champion (first)"
    version = log.resulting_version
    assert version.status == Status.CHAMPION and version.version == "v1"
    assert (log.data_start, log.data_end) == (dt.date(2025, 9, 3), dt.date(2025, 12, 31))
    assert (version.training_start, version.training_end) == (log.data_start, log.data_end)
    assert log.rows == version.training_rows > 0
    assert log.started_at <= log.finished_at
    move = version.transitions.get()
    assert move.actor_label == "system"
    assert move.evidence["source"] == "first_model"
    # Its held-out walk-forward error is kept as the baseline health compares with.
    assert version.metrics["mae"] > 0


def test_scheduled_retrain_that_beats_the_champion_is_promoted_with_its_evidence_logged(sales):
    champion = naive_champion()

    log = retrain_forecast_model(
        trigger=Trigger.SCHEDULED, algorithm="xgboost", hyperparameters=QUICK_XGBOOST
    )

    assert log.status == LogStatus.SUCCEEDED, log.error
    assert log.outcome == "promoted"
    new = log.resulting_version
    assert get_champion_model(name="demand_forecast").pk == new.pk
    assert ModelVersion.objects.get(pk=champion.pk).status == Status.ARCHIVED
    assert new.parent_id == champion.pk
    promotion = ModelTransition.objects.get(model_version=new, to_status=Status.CHAMPION)
    assert promotion.actor is None and promotion.actor_label == "system"
    evidence = promotion.evidence
    assert evidence["source"] == "walk_forward"
    assert evidence["champion"]["version"] == champion.version
    assert evidence["candidate"]["version"] == new.version
    assert evidence["improvement"]["mae_pct"] >= 5
    assert evidence["improvement"]["mape_pct"] >= 5
    assert evidence["test"]["name"] == "wilcoxon_signed_rank_one_sided"
    assert evidence["test"]["confidence"] >= 0.95 and evidence["test"]["p_value"] <= 0.05
    assert evidence["thresholds"] == {"min_improvement_pct": 5.0, "min_confidence": 0.95}
    assert evidence["n_series"] == 40 and evidence["n_points"] > 0
    assert len(evidence["window"]["cutoffs"]) == 4
    assert evidence["candidate_metrics"]["mae"] < evidence["champion_metrics"]["mae"]
    # The same verdict is on the version, and on the retired champion's move.
    assert new.last_evaluation == evidence
    retired = ModelTransition.objects.get(model_version=champion, to_status=Status.ARCHIVED)
    assert retired.evidence == evidence


def test_drift_retrain_becomes_challenger_and_is_promoted_only_by_a_person(sales, manager, viewer):
    champion = naive_champion()

    log = retrain_forecast_model(
        trigger=Trigger.DRIFT_DETECTED,
        algorithm="xgboost",
        hyperparameters=QUICK_XGBOOST,
        trigger_metadata={"drift_pct": 31.0},
    )

    assert log.status == LogStatus.SUCCEEDED, log.error
    assert log.outcome == "challenger"
    # After drift the recipe is the one asked for, on its usual window: a shorter window or
    # recency weights did not beat the champion's recipe on fresh sales (bench/drift_adaptation.py).
    assert log.window_days == 730
    challenger = log.resulting_version
    assert challenger.status == Status.CHALLENGER
    assert get_champion_model(name="demand_forecast").pk == champion.pk
    assert get_challenger_model(name="demand_forecast").pk == challenger.pk
    # It would clear the gate, and health can say so, but nothing promotes it automatically.
    assert challenger.last_evaluation["promote"] is True
    assert not ModelTransition.objects.filter(
        model_version=challenger, to_status=Status.CHAMPION
    ).exists()

    with pytest.raises(PermissionDenied):
        evaluate_for_promotion(candidate=challenger, actor=viewer)

    decision = evaluate_for_promotion(candidate=challenger, actor=manager)

    assert decision.promote
    assert get_champion_model(name="demand_forecast").pk == challenger.pk
    move = ModelTransition.objects.get(model_version=challenger, to_status=Status.CHAMPION)
    assert move.actor == manager
    assert move.evidence["champion"]["version"] == champion.version


def test_scheduled_retrain_worse_than_the_champion_is_archived(sales, manager):
    panel = load_sales_panel(start=dt.date(2025, 5, 6), end=dt.date(2025, 12, 31))
    champion = register_model_version(
        algorithm="xgboost",
        model=build_model("xgboost", **QUICK_XGBOOST).fit(panel),
        training_start=dt.date(2025, 5, 6),
        training_end=dt.date(2025, 12, 31),
        training_rows=panel.quantity.size,
    )
    promote_to_champion(version=champion, actor=manager, reason="XGBoost baseline")

    log = retrain_forecast_model(trigger=Trigger.SCHEDULED, algorithm="seasonal_naive")

    assert log.status == LogStatus.SUCCEEDED, log.error
    assert log.outcome == "archived"
    loser = log.resulting_version
    assert loser.status == Status.ARCHIVED
    assert loser.last_evaluation["promote"] is False
    move = loser.transitions.get()
    assert move.actor_label == "system"
    assert "Does not clear the promotion gate" in move.reason
    assert move.evidence["improvement"]["mae_pct"] < 0
    assert get_champion_model(name="demand_forecast").pk == champion.pk


def test_failure_after_training_keeps_the_artifact_and_the_log_and_registers_nothing(
    sales, monkeypatch
):
    def broken(**kwargs):
        raise RuntimeError("disk full while settling")

    monkeypatch.setattr("mlops.services.retraining.apply_retrain_decision", broken)

    log = retrain_forecast_model(trigger=Trigger.SCHEDULED, algorithm="seasonal_naive")

    log.refresh_from_db()
    assert log.status == LogStatus.FAILED
    assert "RuntimeError: disk full while settling" in log.error
    assert log.finished_at is not None and log.resulting_version is None
    assert not ModelVersion.objects.exists()
    assert not ModelTransition.objects.exists()
    # What training produced is kept: the artifact is in storage under its checksum.
    assert log.artifact_sha256 and default_storage.exists(log.artifact.name)
    assert log.rows > 0 and log.algorithm == "seasonal_naive"


def test_failure_before_training_is_logged(monkeypatch):
    log = retrain_forecast_model(trigger=Trigger.MANUAL)

    assert log.status == LogStatus.FAILED
    assert "no sales" in log.error
    assert not ModelVersion.objects.exists()


def test_registered_model_loads_back_and_a_tampered_artifact_is_refused(sales):
    version = naive_champion()
    model = load_model(version)
    assert model.algorithm == "seasonal_naive"

    with default_storage.open(version.artifact.name, "wb") as handle:
        handle.write(b"not the model")
    with pytest.raises(ArtifactIntegrityError, match="sha256"):
        load_model(version)


def test_segment_retrain_is_judged_against_the_global_champion_on_its_own_series(sales):
    naive_champion()
    electronics = sales[sales["department"] == "Electronics"]
    n_series = len(electronics.groupby(["store", "product"], observed=True))

    log = retrain_forecast_model(
        trigger=Trigger.EXPERIMENT,
        segment="department:Electronics",
        algorithm="xgboost",
        hyperparameters=QUICK_XGBOOST,
    )

    assert log.status == LogStatus.SUCCEEDED, log.error
    version = log.resulting_version
    assert (version.segment, version.status) == ("department:Electronics", Status.CHALLENGER)
    evaluation = version.last_evaluation
    assert evaluation["champion"]["segment"] == "global"
    assert evaluation["replaces_id"] is None  # the segment has no champion of its own yet
    assert evaluation["n_series"] == n_series
    assert log.rows == n_series * 240  # trained on its own department's series only
