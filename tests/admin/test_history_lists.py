"""Retraining log and backtest results in the admin: read-only lists with filters."""

import datetime as dt

from django.utils import timezone

from mlops.models import BacktestResult, ModelRetrainingLog, Trigger, WalkForwardRun
from mlops.services.walk_forward_runs import fail_walk_forward_run
from tests.admin.conftest import logged_in
from tests.admin.test_model_versions import result_rows
from tests.mlops.factories import ModelVersionFactory


def test_retraining_log_filters_by_trigger_and_status_and_cannot_be_edited(manager):
    drift = ModelRetrainingLog.objects.create(
        trigger=Trigger.DRIFT_DETECTED,
        status="succeeded",
        outcome="challenger",
        hyperparameters={"max_depth": 6},
        trigger_metadata={"mae_increase_pct": 21.5},
    )
    ModelRetrainingLog.objects.create(trigger=Trigger.SCHEDULED, status="failed", error="boom")
    client = logged_in("maria")

    drift_only = result_rows(
        client.get(
            "/admin/mlops/modelretraininglog/?trigger__exact=drift_detected"
        ).content.decode()
    )
    failed_only = result_rows(
        client.get("/admin/mlops/modelretraininglog/?status__exact=failed").content.decode()
    )
    detail = client.get(f"/admin/mlops/modelretraininglog/{drift.pk}/change/").content.decode()

    assert "Drift detected" in drift_only and "Scheduled" not in drift_only
    assert "Scheduled" in failed_only and "Drift detected" not in failed_only
    assert "<th>mae_increase_pct</th><td>21.5</td>" in detail  # a table, not JSON
    assert "<th>max_depth</th><td>6</td>" in detail
    assert client.get("/admin/mlops/modelretraininglog/add/").status_code == 403
    client.post(f"/admin/mlops/modelretraininglog/{drift.pk}/change/", {"status": "failed"})
    drift.refresh_from_db()
    assert drift.status == "succeeded"


def test_backtest_results_filter_by_kind_and_link_to_the_version(viewer):
    version = ModelVersionFactory(status="champion")
    day = dt.date(2026, 3, 1)
    BacktestResult.objects.create(
        model_version=version, kind="walk_forward", window_start=day, window_end=day, mae=3.25
    )
    BacktestResult.objects.create(
        model_version=version, kind="t_minus_1", window_start=day, window_end=day, mae=9.75
    )
    client = logged_in("vera")

    walk_forward = result_rows(
        client.get("/admin/mlops/backtestresult/?kind__exact=walk_forward").content.decode()
    )

    assert "3.25 units" in walk_forward and "9.75 units" not in walk_forward
    assert f"/admin/mlops/modelversion/{version.pk}/change/" in walk_forward
    assert client.get("/admin/mlops/backtestresult/add/").status_code == 403


def test_drift_incidents_list_their_change_date_rules_and_resolution(viewer):
    from mlops.models import DriftIncident

    champion = ModelVersionFactory(status="champion", version_number=7)
    DriftIncident.objects.create(
        champion=champion,
        change_date=dt.date(2026, 3, 30),
        opened_on=dt.date(2026, 4, 1),
        last_checked_on=dt.date(2026, 4, 2),
        rules=["error_cusum", "threshold"],
        detection={"drift_pct": 18.5},
    )
    DriftIncident.objects.create(
        champion=champion,
        segment="department:Apparel",
        change_date=dt.date(2026, 1, 5),
        opened_on=dt.date(2026, 1, 6),
        last_checked_on=dt.date(2026, 1, 20),
        rules=["bias_cusum"],
        status="resolved",
        resolution="recovered",
        resolved_on=dt.date(2026, 1, 20),
    )
    client = logged_in("vera")

    open_only = result_rows(
        client.get("/admin/mlops/driftincident/?status__exact=open").content.decode()
    )
    everything = result_rows(client.get("/admin/mlops/driftincident/").content.decode())
    incident = DriftIncident.objects.get(status="open")
    detail = client.get(f"/admin/mlops/driftincident/{incident.pk}/change/").content.decode()

    assert "error_cusum, threshold" in open_only and "bias_cusum" not in open_only
    assert "March 30, 2026" in open_only and "v7" in open_only
    assert "Recovered" in everything and "Jan. 20, 2026" in everything
    assert "<th>drift_pct</th><td>18.5</td>" in detail  # a table, not JSON
    assert client.get("/admin/mlops/driftincident/add/").status_code == 403


def test_walk_forward_runs_show_how_many_windows_are_in_and_why_one_failed(manager):
    version = ModelVersionFactory(version="v7")
    cutoffs = [(dt.date(2025, 3, 3) + dt.timedelta(days=7 * k)).isoformat() for k in range(13)]
    running = WalkForwardRun.objects.create(
        model_version=version,
        requested_at=timezone.now(),
        cutoffs=cutoffs,
        end=dt.date(2025, 6, 1),
    )
    for cutoff in cutoffs[:7]:
        running.windows.create(cutoff=cutoff, result={"mae": 1.0})
    failed = WalkForwardRun.objects.create(
        model_version=ModelVersionFactory(version="v8"),
        requested_at=timezone.now(),
        cutoffs=cutoffs,
        end=dt.date(2025, 6, 1),
    )
    fail_walk_forward_run(run=failed, error="The window from 2025-03-10 failed: XGBoostError()")
    client = logged_in("maria")

    listing = result_rows(client.get("/admin/mlops/walkforwardrun/").content.decode())
    detail = client.get(f"/admin/mlops/walkforwardrun/{failed.pk}/change/").content.decode()

    assert "7 of 13 windows" in listing and "Running" in listing
    assert "0 of 13 windows" in listing and "Failed" in listing
    assert "The window from 2025-03-10 failed: XGBoostError()" in detail
    assert client.get("/admin/mlops/walkforwardrun/add/").status_code == 403
