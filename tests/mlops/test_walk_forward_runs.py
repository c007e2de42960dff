"""A walk-forward spread over workers: its windows run apart, in any order, and are stored
together when the last is in, with the results of one walk-forward run in one piece."""

import datetime as dt

import pytest
from django.utils import timezone

from config.celery import app as celery_app
from forecasting.synthetic import generate_sales
from mlops.models import BacktestResult, ModelVersion, WalkForwardRun
from mlops.services import run_continuous_backtest
from mlops.services.walk_forward_runs import (
    fail_walk_forward_run,
    finish_walk_forward_run,
    run_walk_forward_windows,
    start_walk_forward_run,
)
from mlops.tasks import backtest_version
from tenants.selectors import policy_overrides
from tests.mlops.factories import ModelVersionFactory, load_sales

COMPARED = ["window_start", "window_end", "mae", "wape", "bias", "coverage", "n_points"]


@pytest.fixture
def version():
    load_sales(generate_sales(stores=2, products=6, days=150, seed=11))
    return ModelVersionFactory(
        algorithm="xgboost",
        hyperparameters={"n_estimators": 30, "max_depth": 3, "calibration_windows": 0},
        status=ModelVersion.Status.CHAMPION,
    )


def _stored(version) -> list[dict]:
    return list(
        BacktestResult.objects.filter(model_version=version, kind="walk_forward")
        .order_by("window_start")
        .values(*COMPARED)
    )


def _stored_after(rows, version) -> list[dict]:
    assert len(rows) == 13
    return _stored(version)


def _walk(version, order) -> WalkForwardRun:
    run = start_walk_forward_run(version=version, requested_at=timezone.now())
    assert run.n_windows == 13
    chains = order([[dt.date.fromisoformat(c) for c in chain] for chain in run.chains()])
    for chain in chains[:-1]:
        run_walk_forward_windows(run=run, cutoffs=chain)
    # All windows but the last task's in: nothing of this run is stored yet; it still runs.
    assert finish_walk_forward_run(run=run) is None
    assert not BacktestResult.objects.filter(created_at__gte=run.started_at).exists()
    run_walk_forward_windows(run=run, cutoffs=chains[-1])
    run_walk_forward_windows(run=run, cutoffs=chains[-1])  # a second delivery changes nothing
    assert run.windows.count() == 13
    assert len(finish_walk_forward_run(run=run)) == 13
    assert finish_walk_forward_run(run=run) == []  # stored once
    run.refresh_from_db()
    assert run.status == WalkForwardRun.Status.SUCCEEDED
    return run


@pytest.mark.parametrize("warm_start", [False, True], ids=["refit", "warm-start"])
def test_windows_run_apart_in_any_order_store_the_same_results(version, warm_start):
    with policy_overrides({"walk_forward_warm_start": warm_start}):
        first = _walk(version, order=list)
        # Refitting, every window is a task; warm-started, each chain of at most four (a full
        # refit, then windows that continue the trees before them), shared out evenly.
        assert [len(chain) for chain in first.chains()] == (
            [4, 3, 3, 3] if warm_start else [1] * 13
        )
        in_order = _stored(version)
        _walk(version, order=lambda chains: chains[::-1])
        assert _stored(version) == in_order
        # The request is answered: it, and any asked before it, start nothing more.
        assert start_walk_forward_run(version=version, requested_at=first.requested_at) is None

        # Each task fits on its own panel; one process walking forward shares features and
        # feature bins between its fits, so its numbers differ a little, never its windows.
        BacktestResult.objects.filter(model_version=version).delete()
        in_one_process = _stored_after(run_continuous_backtest(version=version), version)
    modes = set(BacktestResult.objects.filter(model_version=version).values_list("mode", flat=True))
    assert modes == {"warm_start" if warm_start else "refit"}
    for apart, together in zip(in_order, in_one_process, strict=True):
        assert apart["window_start"] == together["window_start"]
        assert apart["n_points"] == together["n_points"]
    mean_mae = [sum(row["mae"] for row in rows) / 13 for rows in (in_order, in_one_process)]
    assert mean_mae[0] == pytest.approx(mean_mae[1], rel=0.02)


def test_a_request_asked_before_a_run_started_is_answered_by_it_even_once_it_finished(version):
    """Two requests a moment apart: the second's delivery waits (a lock retry, a message handed
    out again) until the run the first started has finished. That run read the sales the
    second asked about: nothing more starts. A request after the run started starts one."""
    asked_first = timezone.now() - dt.timedelta(minutes=2)
    run = start_walk_forward_run(version=version, requested_at=asked_first)
    WalkForwardRun.objects.filter(pk=run.pk).update(status=WalkForwardRun.Status.SUCCEEDED)

    asked_second = asked_first + dt.timedelta(minutes=1)  # before the run started
    assert start_walk_forward_run(version=version, requested_at=asked_second) is None
    later = start_walk_forward_run(version=version, requested_at=timezone.now())
    assert later is not None and later.pk != run.pk


def test_a_family_that_cannot_continue_a_fit_refits_every_window():
    load_sales(generate_sales(stores=2, products=6, days=150, seed=11))
    naive = ModelVersionFactory(algorithm="seasonal_naive", status=ModelVersion.Status.CHAMPION)
    run = start_walk_forward_run(version=naive, requested_at=timezone.now())
    assert not run.warm_start and len(run.chains()) == 13


def test_a_failed_window_fails_the_run_and_leaves_the_stored_results_as_they_were(version):
    before = _stored_after(run_continuous_backtest(version=version), version)
    run = start_walk_forward_run(version=version, requested_at=timezone.now())
    cutoffs = [dt.date.fromisoformat(cutoff) for cutoff in run.cutoffs]
    for cutoff in cutoffs[:5]:
        run_walk_forward_windows(run=run, cutoffs=[cutoff])

    fail_walk_forward_run(run=run, error=f"The window from {cutoffs[5]} failed: MemoryError()")

    run.refresh_from_db()
    assert run.status == WalkForwardRun.Status.FAILED
    assert str(cutoffs[5]) in run.error
    # Windows still queued for it do no work, and nothing of it is ever stored.
    assert run_walk_forward_windows(run=run, cutoffs=[cutoffs[6]]) is None
    assert finish_walk_forward_run(run=run) == []
    assert _stored(version) == before
    # A failed run does not answer the request: a new one may start.
    assert start_walk_forward_run(version=version, requested_at=run.requested_at) is not None


def test_one_walk_forward_of_a_version_runs_at_a_time(version):
    first = start_walk_forward_run(version=version, requested_at=timezone.now())
    assert first is not None
    assert start_walk_forward_run(version=version, requested_at=timezone.now()) is None


def test_a_window_that_cannot_be_fit_fails_its_run_clearly_and_stores_nothing(monkeypatch):
    load_sales(generate_sales(stores=2, products=6, days=150, seed=11))
    broken = ModelVersionFactory(
        algorithm="xgboost",
        hyperparameters={"n_estimators": 30, "max_depth": -3, "calibration_windows": 0},
        status=ModelVersion.Status.CHALLENGER,
    )
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)

    backtest_version.delay(broken.pk, requested_at=timezone.now().isoformat())

    [run] = WalkForwardRun.objects.filter(model_version=broken)
    assert run.status == WalkForwardRun.Status.FAILED
    first = dt.date.fromisoformat(run.cutoffs[0])
    assert run.error.startswith(f"The window from {first} (a chain of 4) failed: ")
    assert "max_depth" in run.error
    assert run.windows.count() == 0
    assert not BacktestResult.objects.filter(model_version=broken).exists()
