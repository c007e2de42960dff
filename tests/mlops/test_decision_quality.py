"""How often the promotion gate is right: replays of the real decision on generated data."""

import numpy as np
import pytest

from forecasting import backtesting
from forecasting.panel import Panel
from forecasting.synthetic import generate_sales
from mlops.services.promotion import decide_promotion

REPLAYS = 200
SERIES_PER_REPLAY = 40
WINDOWS_PER_REPLAY = 4  # what evaluate_for_promotion scores: the last four weekly windows
POOL_WINDOWS = 6
HORIZON = 7
# A small, stochastic recipe: two seeds give two equally good retrains of one recipe.
RECIPE = {"n_estimators": 25, "max_depth": 4, "subsample": 0.8, "calibration_windows": 0}
GATE = {"min_improvement_pct": 5.0, "min_confidence": 0.95}


@pytest.fixture(scope="module")
def retrains():
    """Actuals and two equally good retrains' walk-forward forecasts, [series, days]."""
    panel = Panel.from_frame(generate_sales(stores=6, products=10, days=200, seed=11))
    cutoffs = backtesting.weekly_cutoffs(
        panel.last_day, days=POOL_WINDOWS * HORIZON, window=HORIZON
    )
    forecasts = []
    for seed in (1, 2):
        windows = backtesting.walk_forward(
            algorithm="xgboost",
            hyperparameters={**RECIPE, "seed": seed},
            panel=panel,
            cutoffs=cutoffs,
            horizon=HORIZON,
        )
        forecasts.append(np.concatenate([window.forecast for window in windows], axis=1))
    actual = np.concatenate([window.actual for window in windows], axis=1)
    return (
        actual.astype(np.float64),
        forecasts[0].astype(np.float64),
        forecasts[1].astype(np.float64),
    )


def replay_rates(retrains, *, error_scale: float, seed: int) -> tuple[float, float]:
    """Share of replays in which the gate promotes a candidate whose errors are `error_scale`
    times an equally good retrain's, and share in which the paired test alone is confident
    enough. Each replay draws the evaluated series and weeks, and per series which retrain
    plays champion, so champion and candidate are exchangeable but for the scale."""
    actual, first, second = retrains
    rng = np.random.default_rng(seed)
    n_series, n_days = actual.shape
    span = WINDOWS_PER_REPLAY * HORIZON
    promoted = confident = 0
    for _ in range(REPLAYS):
        start = HORIZON * rng.integers(0, POOL_WINDOWS - WINDOWS_PER_REPLAY + 1)
        series = rng.choice(n_series, SERIES_PER_REPLAY, replace=False)
        days = slice(start, start + span)
        swap = rng.random(SERIES_PER_REPLAY) < 0.5
        a, b = first[series, days], second[series, days]
        champion = np.where(swap[:, None], a, b)
        base = np.where(swap[:, None], b, a)
        observed = actual[series, days]
        candidate = observed + error_scale * (base - observed)
        decision = decide_promotion(
            actual=observed,
            candidate_forecast=candidate,
            champion_forecast=champion,
            series=np.repeat(series, span),
            candidate_coverage=1.0,
            champion_coverage=1.0,
            **GATE,
        )
        promoted += decision.promote
        confident += decision.test["confidence"] >= GATE["min_confidence"]
    return promoted / REPLAYS, confident / REPLAYS


@pytest.mark.nodb
def test_gate_rarely_promotes_an_equally_good_retrain_and_nearly_always_a_ten_percent_better_one(
    retrains,
):
    equally_good, test_alone = replay_rates(retrains, error_scale=1.0, seed=1)
    ten_percent_better, _ = replay_rates(retrains, error_scale=0.9, seed=2)
    three_percent_better, _ = replay_rates(retrains, error_scale=0.97, seed=3)

    print(
        f"\nPromotion rate over {REPLAYS} replays: A/A (equally good retrain) "
        f"{equally_good:.1%} (paired test alone confident in {test_alone:.1%}); "
        f"10% lower error {ten_percent_better:.1%}; "
        f"3% lower error (under the 5% bar) {three_percent_better:.1%}"
    )
    assert equally_good <= 0.05
    assert ten_percent_better >= 0.90
    assert three_percent_better <= 0.05
    # The test itself is calibrated: under A/A it is confident about as often as it should be.
    assert test_alone <= 0.10
