"""Which emergency retrain beats a drifted champion on the days after the shift?

Generated sales (the demo's shift: 30% of the series sell 40% more from a day on). The drifted
champion is the default XGBoost recipe trained ten days before the shift. Emergency retrains are
trained `--detect` days into the shift (when drift is typically found) and judged, as the daily
judging does, on one-day-ahead forecasts of the next `--judge` days, against the champion's
forecasts of the same series and days:

- refresh: the champion's own recipe (and window) refit on the freshest sales;
- window N: the same recipe on the last N days only;
- half-life N: the same recipe with sample weights 0.5 ** (age / N) on its window;
- oracle: the champion's forecasts of the shifted series scaled by their true post-shift bias
  (not a recipe: an upper bound on what removing the shift's bias can gain in MAE).

Each line prints MAE against the champion's as a ratio (below 1 is better) and the paired test's
confidence that the candidate's error is lower (the gate asks 0.95 and 5% better).

Usage: .venv/bin/python bench/drift_adaptation.py [--seeds 3,4,5] [--detect 3] [--judge 2,7]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
if str(REPOSITORY_ROOT) not in sys.path:
    sys.path.insert(0, str(REPOSITORY_ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xgboost as xgb  # noqa: E402

from forecasting.families import build_model  # noqa: E402
from forecasting.features import FEATURE_NAMES, CategoryEncodings, training_rows  # noqa: E402
from forecasting.panel import Panel  # noqa: E402
from forecasting.synthetic import generate_sales  # noqa: E402

END = dt.date(2025, 9, 30)
DAYS = 500
SHIFT = END - dt.timedelta(days=29)
WINDOW = 450


def paired_confidence(series: np.ndarray, candidate: np.ndarray, champion: np.ndarray) -> float:
    """One-sided Wilcoxon over series that the candidate's mean absolute error is lower (the
    gate's test, `mlops.services.promotion.paired_series_test`, without Django)."""
    from scipy import stats

    codes, index = np.unique(series, return_inverse=True)
    difference = np.bincount(index, weights=champion - candidate) / np.bincount(index)
    if np.count_nonzero(difference) < 2:
        return 0.0
    return 1.0 - float(stats.wilcoxon(difference, alternative="greater").pvalue)


def one_day_ahead(model, panel: Panel, days: list[dt.date]) -> np.ndarray:
    columns = []
    for day in days:
        seen = panel.until(day + dt.timedelta(days=1)).as_seen_at(day)
        columns.append(model.predict(seen, day, horizon=1).values[:, 0])
    return np.stack(columns, axis=1).astype(np.float64)


def fit(panel: Panel, last: dt.date, *, window: int, halflife: float | None = None):
    training = panel.window(last - dt.timedelta(days=window - 1), last)
    model = build_model("xgboost", calibration_windows=0)
    if halflife is None:
        return model.fit(training)
    # The family trains unweighted; the weighted variant trains its booster on the family's
    # own feature rows with recency weights.
    model.encodings = CategoryEncodings.fit(panel=training)
    features, target = training_rows(panel=training, encodings=model.encodings)
    known = ~np.isnan(training.quantity[:, 28:].reshape(-1))
    age = np.tile(np.arange(training.n_days - 28)[::-1], training.n_series)[known]
    matrix = xgb.DMatrix(
        pd.DataFrame(features, columns=list(FEATURE_NAMES)),
        label=target,
        weight=0.5 ** (age / halflife),
    )
    parameters = model.booster_parameters()
    model.booster = xgb.train(
        parameters, matrix, num_boost_round=model.hyperparameters["n_estimators"]
    )
    model.calibration, model.fitted = None, True
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="3,4,5")
    parser.add_argument("--detect", type=int, default=3, help="post-shift days before training")
    parser.add_argument("--judge", default="2,7", help="days judged after training")
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("--products", type=int, default=50)
    args = parser.parse_args()
    judge_days = [int(each) for each in args.judge.split(",")]
    print(
        f"{args.stores * args.products} series, shift {SHIFT} (30% of series +40%), emergency "
        f"retrains trained {args.detect} day(s) into it; MAE ratio to the drifted champion"
    )
    for seed in [int(each) for each in args.seeds.split(",")]:
        frame = generate_sales(
            stores=args.stores,
            products=args.products,
            days=DAYS,
            seed=seed,
            end_date=END,
            drift_date=SHIFT,
            drift_fraction=0.3,
            drift_size=0.4,
        )
        steady = generate_sales(
            stores=args.stores, products=args.products, days=DAYS, seed=seed, end_date=END
        )
        panel = Panel.from_frame(frame)
        shifted = panel.quantity[:, -29:].sum(1) > Panel.from_frame(steady).quantity[:, -29:].sum(1)
        champion = fit(panel, SHIFT - dt.timedelta(days=10), window=WINDOW)
        trained_to = SHIFT + dt.timedelta(days=args.detect - 1)
        candidates = {
            "refresh": fit(panel, trained_to, window=WINDOW),
            "window 180": fit(panel, trained_to, window=180),
            "window 90": fit(panel, trained_to, window=90),
            "half-life 60": fit(panel, trained_to, window=WINDOW, halflife=60),
            "half-life 14": fit(panel, trained_to, window=WINDOW, halflife=14),
        }
        for judge in judge_days:
            days = [trained_to + dt.timedelta(days=k) for k in range(1, judge + 1)]
            first = panel.day_position(days[0])
            actual = panel.quantity[:, first : first + judge].astype(np.float64)
            served = one_day_ahead(champion, panel, days)
            series = np.repeat(np.arange(panel.n_series), judge)
            base = np.abs(actual - served)
            rows = {name: one_day_ahead(model, panel, days) for name, model in candidates.items()}
            bias = (served[shifted] - actual[shifted]).sum() / actual[shifted].sum()
            oracle = served.copy()
            oracle[shifted] /= 1.0 + bias
            rows["oracle (bias removed)"] = oracle
            for name, forecast in rows.items():
                error = np.abs(actual - forecast)
                confidence = paired_confidence(series, error.reshape(-1), base.reshape(-1))
                print(
                    f"  seed {seed}, judged on {judge} day(s): {name:22s} MAE ratio "
                    f"{error.mean() / base.mean():.3f}, confidence better {confidence:.3f}"
                )


if __name__ == "__main__":
    main()
