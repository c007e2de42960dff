"""Model health per segment, and the registry's history reads."""

import datetime as dt

import pytest

from alerts.models import MLAlert
from mlops.health_selectors import model_health
from mlops.models import BacktestResult, DecisionKind, DriftIncident, ModelVersion
from mlops.selectors import model_history, transition_history
from mlops.services import detect_drift, make_challenger, promote_to_champion, reject_model_version
from mlops.services.incidents import resolve_incident
from tests.api.clients import client_for
from tests.mlops.factories import ModelVersionFactory
from tests.mlops.test_drift import LAST_DAY as DRIFT_DAY
from tests.mlops.test_drift import add_days, make_champion

Status = ModelVersion.Status
LAST_DAY = dt.date(2026, 1, 31)


def t_minus_1(version: ModelVersion, maes: list[float]) -> None:
    """Daily T-1 results ending on LAST_DAY, oldest first."""
    first = LAST_DAY - dt.timedelta(days=len(maes) - 1)
    for offset, mae in enumerate(maes):
        day = first + dt.timedelta(days=offset)
        BacktestResult.objects.create(
            model_version=version,
            kind=BacktestResult.Kind.T_MINUS_1,
            window_start=day,
            window_end=day,
            mae=mae,
            n_points=100,
        )


def evaluated(version: ModelVersion, *, mae: float, promote: bool = True, confidence=0.97):
    version.last_evaluation = {
        "promote": promote,
        "reason": "Beats the champion",
        "candidate_metrics": {"mae": mae},
        "test": {"confidence": confidence},
        "evaluated_at": "2026-01-01T02:00:00+00:00",
    }
    version.save()
    return version


def test_health_reports_each_segment_with_champion_trend_and_challenger_standing(manager):
    drifting = evaluated(ModelVersionFactory(), mae=10.0)
    promote_to_champion(version=drifting, actor=manager, reason="baseline 10")
    t_minus_1(drifting, [10.0] * 23 + [12.5] * 7)
    challenger = evaluated(ModelVersionFactory(), mae=9.0, confidence=0.97)
    make_challenger(version=challenger, actor=manager, reason="drift retrain")
    t_minus_1(challenger, [9.5] * 7)
    steady = evaluated(ModelVersionFactory(segment="department:Electronics"), mae=10.0)
    promote_to_champion(version=steady, actor=manager, reason="segment")
    t_minus_1(steady, [10.5] * 23 + [9.8] * 7)
    # The daily drift check opens the global champion's incident; health says what it says.
    assert detect_drift().incident_opened

    health = model_health(name="demand_forecast")

    assert [entry["segment"] for entry in health] == ["global", "department:Electronics"]
    glob, electronics = health
    assert glob["champion"]["version"] == drifting.version
    assert glob["champion"]["status"] == "drifting"  # 25% worse: its drift incident is open
    assert glob["champion"]["incident"]["rules"] == ["threshold"]
    # What the check saw, in numbers and in the alert's words.
    incident = glob["champion"]["incident"]
    assert (incident["recent_mae"], incident["baseline_mae"]) == (12.5, 10.0)
    assert incident["headline"] == "MAE 25.0% worse than its baseline"
    assert incident["as_of"] == glob["champion"]["as_of"].isoformat()
    assert glob["champion"]["mae_7d"] == 12.5
    assert round(glob["champion"]["mae_30d"], 3) == round((23 * 10 + 7 * 12.5) / 30, 3)
    assert glob["champion"]["trend"] == "degrading"
    assert glob["champion"]["promoted_at"] is not None
    assert glob["challenger"] == {
        "id": challenger.pk,
        "version": challenger.version,
        "algorithm": challenger.algorithm,
        "status": "shadow_testing",
        "mae_7d": 9.5,
        # Results without the retail pack (stored before it) show none.
        "fva_pct_7d": None,
        "mase_7d": None,
        "rmsse_7d": None,
        "wql_7d": None,
        "tracking_signal_7d": None,
        "promotion_eligible": True,
        "confidence": 0.97,
        "evaluation_reason": "Beats the champion",
        "evaluated_at": "2026-01-01T02:00:00+00:00",
        "evidence_source": None,
        "evidence_days": None,
        "decision_kind": None,
        "waiting_for": None,
        "canary_weight": 0.0,
    }
    assert glob["challengers"] == [glob["challenger"]]
    assert electronics["champion"]["status"] == "healthy"
    assert electronics["champion"]["trend"] == "improving"
    assert electronics["challenger"] is None


def test_health_shows_the_retail_pack_of_the_last_week_of_t_minus_1(manager):
    champion = evaluated(ModelVersionFactory(), mae=10.0)
    promote_to_champion(version=champion, actor=manager, reason="baseline 10")
    t_minus_1(champion, [10.0] * 8)
    rows = list(BacktestResult.objects.filter(model_version=champion).order_by("window_end"))
    # The day before the week is left out; six days of 100 points, the last of 300.
    retail = [(90.0, 9.0, 9.0, 9.0, 9.0, 100)] + [(10.0, 1.0, 2.0, 0.5, 1.0, 100)] * 6
    retail += [(30.0, 0.5, 1.0, 0.1, -5.0, 300)]
    for row, (fva, mase, rmsse, wql, signal, points) in zip(rows, retail, strict=True):
        row.fva_pct, row.mase, row.rmsse, row.wql = fva, mase, rmsse, wql
        row.tracking_signal, row.n_points = signal, points
        row.save()

    (entry,) = model_health(name="demand_forecast")

    champion_health = entry["champion"]
    assert champion_health["fva_pct_7d"] == pytest.approx((6 * 10.0 * 100 + 30.0 * 300) / 900)
    assert champion_health["mase_7d"] == pytest.approx((6 * 1.0 * 100 + 0.5 * 300) / 900)
    assert champion_health["rmsse_7d"] == pytest.approx((6 * 2.0 * 100 + 1.0 * 300) / 900)
    assert champion_health["wql_7d"] == pytest.approx((6 * 0.5 * 100 + 0.1 * 300) / 900)
    # The latest day's already runs over the week up to it.
    assert champion_health["tracking_signal_7d"] == -5.0


def test_health_agrees_with_the_alerts_drifting_while_an_incident_is_open_and_not_after(
    manager,
):
    champion = evaluated(ModelVersionFactory(), mae=10.0)
    promote_to_champion(version=champion, actor=manager, reason="baseline 10")
    t_minus_1(champion, [12.5] * 7)
    result = detect_drift()
    assert model_health()[0]["champion"]["status"] == "drifting"

    incident = DriftIncident.objects.get(pk=result.incident_id)
    resolve_incident(incident=incident, resolution="dismissed", note="new normal")

    # Dismissed: re-baselined at today's level, the champion is no longer drifting.
    assert model_health()[0]["champion"]["status"] != "drifting"
    assert model_health()[0]["champion"]["incident"] is None


def test_health_of_a_champion_without_results_is_unknown_not_healthy(manager):
    champion = ModelVersionFactory()
    promote_to_champion(version=champion, actor=manager, reason="new")

    (entry,) = model_health(name="demand_forecast")

    assert entry["champion"]["status"] == "unknown"
    assert entry["champion"]["mae_7d"] is None and entry["champion"]["trend"] is None


def test_degraded_between_half_and_the_full_drift_threshold(manager):
    champion = evaluated(ModelVersionFactory(), mae=10.0)
    promote_to_champion(version=champion, actor=manager, reason="x")
    t_minus_1(champion, [11.0] * 7)  # 10% worse: over half of the 15% threshold

    (entry,) = model_health(name="demand_forecast")

    assert entry["champion"]["status"] == "degraded"


def test_history_lists_versions_and_their_moves_in_order(manager):
    first, second = ModelVersionFactory(), ModelVersionFactory()
    promote_to_champion(version=first, actor=manager, reason="one")
    make_challenger(version=second, actor=manager, reason="two")
    reject_model_version(version=second, actor=manager, reason="worse")

    versions = list(model_history(name="demand_forecast"))
    moves = list(transition_history(second))

    assert [v.version for v in versions] == [second.version, first.version]
    assert [(m.from_status, m.to_status) for m in moves] == [
        ("candidate", "challenger"),
        ("challenger", "archived"),
    ]
    assert list(model_history(name="another_model")) == []


@pytest.fixture
def bias_drift():
    """A champion whose MAE barely moved while it under-forecasts 15% for four days: the bias
    CUSUM opens a (critical) drift incident; by its MAE alone it would be healthy."""
    champion = make_champion()
    add_days(champion, mae=10.0, days=30, end=DRIFT_DAY - dt.timedelta(days=4))
    add_days(champion, mae=10.4, days=4, bias=-15.0)
    result = detect_drift()
    assert result.rules == ["bias_cusum"]
    return champion, DriftIncident.objects.get(pk=result.incident_id)


def test_a_champion_with_an_open_drift_incident_is_never_shown_healthy(
    viewer, bias_drift, django_capture_on_commit_callbacks
):
    champion, incident = bias_drift
    assert MLAlert.objects.get(pk=incident.alert_id).severity == "critical"
    client = client_for(viewer)

    (entry,) = model_health()
    api = client.get("/api/v1/models/health").json()

    assert entry["champion"]["mae_7d"] < 10.4  # under half the 15% threshold worse
    assert entry["champion"]["status"] == "drifting"
    assert entry["champion"]["incident"]["id"] == incident.pk
    assert api["champion"]["status"] == "drifting"
    with django_capture_on_commit_callbacks(execute=True):
        resolve_incident(incident=incident, resolution="dismissed", note="a new normal")
    assert model_health()[0]["champion"]["status"] == "healthy"
    assert client.get("/api/v1/models/health").json()["champion"]["status"] == "healthy"


def test_a_refresh_that_carries_the_incident_on_is_drifting_too(manager, bias_drift):
    champion, incident = bias_drift
    refresh = ModelVersionFactory(
        parent=champion,
        decision_kind=DecisionKind.REFRESH,
        training_end=incident.change_date + dt.timedelta(days=2),
        last_evaluation={"candidate_metrics": {"mae": 10.0}},
    )

    promote_to_champion(version=refresh, actor=manager, reason="weekly refresh")

    (entry,) = model_health()
    assert entry["champion"]["version"] == refresh.version
    assert entry["champion"]["status"] == "drifting"
    assert entry["champion"]["incident"]["id"] == incident.pk
