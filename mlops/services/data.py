"""The sales panels the registry trains, judges and forecasts on, read from the tenant's sales."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable

from forecasting.known_inputs import HolidayRegion
from forecasting.panel import Panel
from forecasting.selectors import load_sales_panel, sales_date_range, with_promotion_calendar
from mlops.models import ModelVersion
from mlops.selectors import incumbent_for
from tenants.selectors import tenant_policy

DEFAULT_WINDOW_DAYS = 730
# The daily forecast sees the target days' promotions only as the tenant's promotion calendar
# knew them at its cutoff (none without a calendar), never the sales' own flags of those days.
# Backtests that judge a version, or set the baseline its drift is measured against, forecast
# the same way, so their errors are the errors it will make in service.
PROMOTIONS_KNOWN_AHEAD = False
# Seven weeks of history before the first target day: the longest feature lag (28 days) plus
# room for the seasonal-naive fallback and the active-series rule (sold in the last 28 days).
FORECAST_HISTORY_DAYS = 56


def latest_sales_day() -> dt.date | None:
    bounds = sales_date_range()
    return bounds[1] if bounds else None


def load_panel(*, start: dt.date, end: dt.date, through: dt.date | None = None) -> Panel:
    """Every series' daily sales from `start` to `end`, both included, carrying what the
    tenant knows ahead (`with_known_inputs`), with unknown sales days added up to `through`
    for the target days of a forecast."""
    return with_known_inputs(load_sales_panel(start=start, end=end), through=through)


def with_known_inputs(panel: Panel, *, through: dt.date | None = None) -> Panel:
    """The panel with the tenant's promotion calendar (point-in-time: `Panel.as_seen_at`) and
    the holiday region of its country, extended up to `through` when that lies beyond it."""
    policy = tenant_policy()
    region = None
    if policy.country:
        region = HolidayRegion(country=policy.country, subdivision=policy.subdivision)
    return dataclasses.replace(with_promotion_calendar(panel, end=through), holiday_region=region)


def window_days_of(version: ModelVersion) -> int:
    """Days of sales the version's recipe trains on (its training window)."""
    return version.recipe_window_days or DEFAULT_WINDOW_DAYS


def evaluation_panel(
    *, versions: Iterable[ModelVersion], windows: int, horizon: int = 7, end: dt.date | None = None
) -> Panel:
    """Enough sales to refit each version's recipe at every evaluation cutoff: the longest
    training window plus the evaluated weeks, up to the latest sale (or `end`)."""
    end = end or latest_sales_day()
    if end is None:
        raise ValueError("There are no sales to evaluate on.")
    involved = list(versions)
    for version in list(involved):
        incumbent = incumbent_for(name=version.name, segment=version.segment)
        if incumbent is not None:
            involved.append(incumbent)
    longest = max(window_days_of(version) for version in involved)
    start = end - dt.timedelta(days=longest + windows * horizon - 1)
    return load_panel(start=start, end=end)
