"""How often the refresh rule is right: replays of the real decision on generated data.

A refresh is the champion's recipe refit on fresher data. Each replay takes a week of a panel,
a champion fit on the recipe's window ending eight days before it (what served that week, one day
ahead), and the same recipe refit a week later (on the window ending the day before the week),
with another seed: an equally good retrain. `decide_refresh` (the non-inferiority part of
`check_refresh`) must let it replace the champion in >= 95% of replays, and refuse a degraded
one (10 trees instead of the recipe's, or forecasts x 0.7) every time.
"""

import datetime as dt

import numpy as np
import pytest

from forecasting.families import build_model
from forecasting.panel import Panel
from forecasting.synthetic import generate_sales
from mlops.services.refresh import decide_refresh, one_day_ahead

pytestmark = pytest.mark.nodb

REPLAYS = 50
WEEK = 7
WINDOW = 120
# A small stochastic recipe: two seeds give two equally good fits of one recipe.
RECIPE = {"n_estimators": 40, "max_depth": 5, "subsample": 0.8, "calibration_windows": 0}
MARGIN_PCT, CONFIDENCE = 3.0, 0.95


@pytest.fixture(scope="module")
def replays():
    """Per replay: actuals, the champion's served forecasts, an equally good refresh's and a
    10-tree refresh's, for 60 series x 7 days."""
    panel = Panel.from_frame(generate_sales(stores=6, products=10, days=WINDOW + 8 + 60, seed=21))
    rng = np.random.default_rng(5)
    last_start = panel.n_days - WEEK
    first_start = WINDOW + 8
    starts = rng.integers(first_start, last_start + 1, size=REPLAYS)
    cases = []
    for replay, start in enumerate(starts):
        week_start = panel.dates[start].date()
        days = [week_start + dt.timedelta(days=k) for k in range(WEEK)]

        def fitted(last: dt.date, **recipe):
            training = panel.window(last - dt.timedelta(days=WINDOW - 1), last)
            return build_model("xgboost", **recipe).fit(training)

        champion = fitted(week_start - dt.timedelta(days=8), **RECIPE, seed=2 * replay)
        refresh = fitted(week_start - dt.timedelta(days=1), **RECIPE, seed=2 * replay + 1)
        underfit = fitted(
            week_start - dt.timedelta(days=1), **{**RECIPE, "n_estimators": 10}, seed=replay
        )
        cases.append(
            {
                "actual": panel.quantity[:, start : start + WEEK].astype(np.float64),
                "champion": one_day_ahead(champion, panel, days),
                "refresh": one_day_ahead(refresh, panel, days),
                "underfit": one_day_ahead(underfit, panel, days),
            }
        )
    return cases


def promoted_share(cases, side: str, scale: float = 1.0) -> float:
    promoted = 0
    for case in cases:
        passed, _ = decide_refresh(
            actual=case["actual"],
            refresh_forecast=case[side] * scale,
            champion_forecast=case["champion"],
            series=np.repeat(np.arange(case["actual"].shape[0]), WEEK),
            margin_pct=MARGIN_PCT,
            min_confidence=CONFIDENCE,
        )
        promoted += passed
    return promoted / len(cases)


def test_an_equally_good_refresh_replaces_the_champion_and_a_degraded_one_never(replays):
    equally_good = promoted_share(replays, "refresh")
    ten_trees = promoted_share(replays, "underfit")
    scaled_down = promoted_share(replays, "refresh", scale=0.7)

    print(
        f"\nRefresh promoted over {REPLAYS} replays: same recipe {equally_good:.0%}, "
        f"10 trees {ten_trees:.0%}, forecasts x 0.7 {scaled_down:.0%}"
    )
    assert equally_good >= 0.95
    assert ten_trees == 0.0
    assert scaled_down == 0.0
