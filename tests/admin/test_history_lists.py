"""Retraining log and backtest results in the admin: read-only lists with filters."""

import datetime as dt

from mlops.models import BacktestResult, ModelRetrainingLog, Trigger
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
