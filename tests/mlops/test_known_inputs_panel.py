"""The panels the registry forecasts from carry what the tenant knew ahead, as of each cutoff."""

import datetime as dt
import io

import numpy as np

from forecasting.services import import_promotion_calendar, import_sales
from mlops.services.data import load_panel

DAY = dt.date(2025, 3, 10)


def test_the_daily_forecast_panel_holds_only_plans_known_by_its_day():
    sales = io.BytesIO(
        b"date,store,product,quantity,department\n"
        + b"".join(f"{DAY - dt.timedelta(days=k)},S1,A,3,Grocery\n".encode() for k in range(1, 30))
    )
    sales.name = "sales.csv"
    import_sales(source=sales)
    calendar = io.BytesIO(
        (
            "store,product,start_date,end_date,known_since\n"
            f"S1,A,{DAY + dt.timedelta(days=1)},{DAY + dt.timedelta(days=2)},{DAY - dt.timedelta(days=5)}\n"
            f"S1,A,{DAY + dt.timedelta(days=4)},{DAY + dt.timedelta(days=5)},{DAY + dt.timedelta(days=1)}\n"
        ).encode()
    )
    calendar.name = "calendar.csv"
    import_promotion_calendar(source=calendar)

    panel = load_panel(
        start=DAY - dt.timedelta(days=29),
        end=DAY - dt.timedelta(days=1),
        through=DAY + dt.timedelta(days=6),
    )
    assert panel.last_day.date() == DAY + dt.timedelta(days=6)
    target = slice(panel.day_position(DAY), panel.n_days)
    # Made on DAY: the plan entered the day after is not seen.
    assert panel.as_seen_at(DAY).on_promotion[0, target].tolist() == [0, 1, 1, 0, 0, 0, 0]
    # A day later it is.
    later = panel.as_seen_at(DAY + dt.timedelta(days=1)).on_promotion[0, target]
    assert later.tolist() == [0, 1, 1, 0, 1, 1, 0]
    assert np.isnan(panel.quantity[0, target]).all()
