"""Stock-outs are censored demand: not training targets, not scored."""

import datetime as dt

import numpy as np

from forecasting.backtesting import walk_forward
from forecasting.panel import Panel
from forecasting.synthetic import generate_sales, with_stockouts


def _sales_with_long_stockouts():
    """Three stores x four products over 150 days; product SKU00001 is out of stock (and
    sells nothing) four days in every ten."""
    sales = generate_sales(stores=3, products=4, days=150, seed=8, end_date=dt.date(2025, 6, 30))
    day_index = (sales["date"] - sales["date"].min()).dt.days
    out = (sales["product"] == "SKU00001") & (day_index % 10 < 4)
    return sales.assign(quantity=sales["quantity"].where(~out, 0), in_stock=~out)


def _forecast(panel: Panel, cutoff):
    (window,) = walk_forward(
        algorithm="xgboost",
        hyperparameters={"n_estimators": 40, "calibration_windows": 0},
        panel=panel,
        cutoffs=[cutoff],
    )
    return window


def test_training_with_censoring_raises_forecasts_of_series_with_stockouts():
    sales = _sales_with_long_stockouts()
    censored = Panel.from_frame(sales)
    as_zeros = Panel.from_frame(sales.drop(columns="in_stock"))
    cutoff = censored.dates[-14]

    with_censoring, zeros_as_demand = _forecast(censored, cutoff), _forecast(as_zeros, cutoff)

    stocked_out = censored.products == "SKU00001"
    raised = (
        with_censoring.forecast[stocked_out].sum() / zeros_as_demand.forecast[stocked_out].sum()
    )
    assert raised > 1.25
    # Series that never ran out barely move.
    others = (
        with_censoring.forecast[~stocked_out].sum() / zeros_as_demand.forecast[~stocked_out].sum()
    )
    assert abs(others - 1) < 0.1


def test_censored_points_are_scored_neither_as_hits_nor_as_misses():
    sales = _sales_with_long_stockouts()
    panel = Panel.from_frame(sales)
    cutoff = panel.dates[-14]
    window = _forecast(panel, cutoff)

    out_in_window = int(window.censored.sum())
    assert out_in_window == 3 * 3  # three stores, days 140..146 hold three out-of-stock days
    assert window.metrics["n_censored"] == out_in_window
    assert window.metrics["n_missing"] == 0
    assert window.metrics["n_points"] == panel.n_series * 7 - out_in_window
    # Scored on in-stock days only: the same as the metric over those points by hand.
    in_stock = ~window.censored
    by_hand = np.abs(window.actual[in_stock] - window.forecast[in_stock]).mean()
    assert np.isclose(window.metrics["mae"], by_hand)


def test_generated_stockouts_sell_nothing_on_a_share_of_the_series():
    sales = generate_sales(stores=4, products=25, days=365, seed=3)
    stocked = with_stockouts(sales, share=0.2, seed=3)
    out = ~stocked["in_stock"]
    assert (stocked.loc[out, "quantity"] == 0).all()
    series_out = stocked.loc[out, ["store", "product"]].drop_duplicates()
    assert 10 <= len(series_out) <= 30  # about 20 of the 100 series
    unchanged = stocked.loc[~out].merge(sales, on=["date", "store", "product"])
    assert (unchanged["quantity_x"] == unchanged["quantity_y"]).all()
