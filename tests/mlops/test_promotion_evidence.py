"""The promotion gate shows the retail pack for both sides of the same points."""

import numpy as np
import pytest

from forecasting import metrics
from mlops.services.promotion import decide_promotion

pytestmark = pytest.mark.nodb

# As in tests/forecasting/test_metrics.py: series A's naive errs 2 a day in-sample, B's 4/7.
HISTORY = np.array(
    [
        [1.0, 2, 3, 4, 5, 6, 7, 3, 4, 5, 6, 7, 8, 9],
        [0.0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1],
    ]
)
ACTUAL = np.array([[10.0, 10], [1, 0]])
CANDIDATE = np.array([[8.0, 13], [1, 1]])
CHAMPION = np.array([[10.0, 10], [0, 0]])


def decide(**extra):
    return decide_promotion(
        actual=ACTUAL,
        candidate_forecast=CANDIDATE,
        champion_forecast=CHAMPION,
        series=np.repeat(np.arange(2), 2),
        candidate_coverage=1.0,
        champion_coverage=1.0,
        min_improvement_pct=5.0,
        min_confidence=0.95,
        history=HISTORY,
        **extra,
    )


def test_the_gate_shows_fva_scaled_errors_and_tracking_signal_of_both_sides():
    decision = decide()
    candidate, champion = decision.candidate_metrics, decision.champion_metrics

    # The naive (the week before: A [3, 4], B [1, 0]) errs [7, 6, 0, 0]: MAE 3.25.
    assert candidate["fva_pct"] == pytest.approx(100 * (1 - 1.5 / 3.25))
    assert champion["fva_pct"] == pytest.approx(100 * (1 - 0.25 / 3.25))
    # Candidate: A 2.5 / 2, B 0.5 / (4/7); champion: A 0, B 0.5 / (4/7).
    assert candidate["mase"] == pytest.approx(1.0625)
    assert champion["mase"] == pytest.approx(0.875 / 2)
    # Candidate errs A [2, -3], B [0, -1]; the champion only B [1, 0] (A never errs).
    assert candidate["tracking_signal"] == pytest.approx((-1 / 2.5 + -1 / 0.5) / 2)
    assert champion["tracking_signal"] == pytest.approx(2.0)
    # Shown, not gating: the gate's checks are the same four.
    assert set(decision.checks) == {"mae", "mape", "coverage", "confidence"}
    assert not decision.promote


def test_wql_is_shown_for_a_side_with_an_interval_only():
    decision = decide(candidate_interval=(CANDIDATE - 1, CANDIDATE + 1))

    assert decision.candidate_metrics["wql"] == pytest.approx(
        metrics.wql(ACTUAL, CANDIDATE, lower=CANDIDATE - 1, upper=CANDIDATE + 1)
    )
    assert decision.champion_metrics["wql"] is None
    evidence = decision.as_evidence()
    assert evidence["candidate_metrics"]["rmsse"] == pytest.approx(
        (np.sqrt(6.5 / 4) + np.sqrt(0.875)) / 2
    )
