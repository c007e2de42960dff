"""Reads of one series over a run of days: actuals, stock-outs and promotions, the forecast served
for each day with its 80% interval, and each shadow version's forecast (the series explorer and
GET /api/v1/series/history). A fixed handful of queries, whatever the number of days."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Exists, Q

from forecasting.models import Forecast, PlannedPromotion, Product, Sale, Store
from forecasting.selectors import sales_date_range
from mlops.models import DEFAULT_MODEL_NAME, ModelVersion

# The longest run of days one read covers (a year, leap day included).
MAX_DAYS = 366
# The explorer's default: the last eight weeks.
DEFAULT_DAYS = 56


class UnknownSeriesError(LookupError):
    """No such store or product, or the pair never sold and was never forecast."""


@dataclass(frozen=True)
class VersionForecast:
    """One version's forecast of a day: from its latest run made on or before the day."""

    version_id: int
    version: str
    version_number: int
    made_on: dt.date
    forecast: float
    lower: float | None
    upper: float | None


@dataclass(frozen=True)
class SeriesDay:
    """One day of the series. `actual` is the stored quantity (0 on a day its store reported
    other sales but not this product; None where the store reported nothing); `censored`: a
    zero sale while out of stock, whose demand is unknown."""

    date: dt.date
    actual: int | None
    censored: bool
    promotion: bool
    served: VersionForecast | None
    shadows: list[VersionForecast] = field(default_factory=list)


@dataclass(frozen=True)
class ServingRun:
    """Consecutive days served by one version (or by none: `version` empty)."""

    version: str
    first: dt.date
    last: dt.date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


@dataclass(frozen=True)
class SeriesHistory:
    store: Store
    product: Product
    name: str
    start: dt.date
    end: dt.date
    days: list[SeriesDay]

    @property
    def shadow_versions(self) -> list[str]:
        """The versions that shadowed the series on some day, oldest version first."""
        seen = {each.version: each.version_number for day in self.days for each in day.shadows}
        return sorted(seen, key=seen.get)

    @property
    def serving_runs(self) -> list[ServingRun]:
        runs: list[ServingRun] = []
        for day in self.days:
            version = day.served.version if day.served else ""
            if runs and runs[-1].version == version:
                runs[-1] = ServingRun(version=version, first=runs[-1].first, last=day.date)
            else:
                runs.append(ServingRun(version=version, first=day.date, last=day.date))
        return runs


def default_range(*, days: int = DEFAULT_DAYS) -> tuple[dt.date, dt.date]:
    """The last `days` up to the tenant's latest sales day (today without sales)."""
    known = sales_date_range()
    end = known[1] if known else dt.date.today()
    return end - dt.timedelta(days=days - 1), end


def series_history(
    *,
    store_code: str,
    product_sku: str,
    start: dt.date,
    end: dt.date,
    name: str = DEFAULT_MODEL_NAME,
) -> SeriesHistory:
    """Every day from `start` to `end` of one series (see SeriesDay); raises UnknownSeriesError, or
    ValueError for a range that is reversed or longer than MAX_DAYS."""
    if end < start or (end - start).days + 1 > MAX_DAYS:
        raise ValueError(f"Give an end on or after the start, at most {MAX_DAYS} days in all.")
    store = Store.objects.filter(code=store_code).first()
    product = Product.objects.filter(sku=product_sku).first() if store else None
    if store is None or product is None:
        raise UnknownSeriesError(f"No series {store_code}/{product_sku}.")
    sales = {
        row["date"]: row
        for row in Sale.objects.filter(
            store=store, product=product, date__gte=start, date__lte=end
        ).values("date", "quantity", "on_promotion", "in_stock")
    }
    forecasts = _latest_forecasts(store=store, product=product, start=start, end=end, name=name)
    if not sales and not forecasts and not _ever_seen(store, product):
        raise UnknownSeriesError(f"{store_code}/{product_sku} never sold and was never forecast.")
    reported = set(
        Sale.objects.filter(store=store, date__gte=start, date__lte=end)
        .values_list("date", flat=True)
        .distinct()
    )
    promoted = _planned_promotion_days(store=store, product=product, start=start, end=end)
    days = []
    for offset in range((end - start).days + 1):
        day = start + dt.timedelta(days=offset)
        sale = sales.get(day)
        served, shadows = _split(forecasts.get(day, []))
        days.append(
            SeriesDay(
                date=day,
                actual=sale["quantity"] if sale else (0 if day in reported else None),
                censored=bool(sale and sale["quantity"] == 0 and not sale["in_stock"]),
                promotion=bool(sale and sale["on_promotion"]) or day in promoted,
                served=served,
                shadows=shadows,
            )
        )
    return SeriesHistory(store=store, product=product, name=name, start=start, end=end, days=days)


def _ever_seen(store: Store, product: Product) -> bool:
    pair = {"store": store, "product": product}
    return (
        Store.objects.filter(pk=store.pk)
        .filter(Exists(Sale.objects.filter(**pair)) | Exists(Forecast.objects.filter(**pair)))
        .exists()
    )


def _planned_promotion_days(
    *, store: Store, product: Product, start: dt.date, end: dt.date
) -> set[dt.date]:
    """Days of the range a planned promotion covers the series (as planned, whenever known)."""
    plans = PlannedPromotion.objects.filter(
        Q(store=store) | Q(store__isnull=True),
        Q(product=product) | Q(product__isnull=True, department=product.department),
        start_date__lte=end,
        end_date__gte=start,
    ).values_list("start_date", "end_date")
    days = set()
    for first, last in plans:
        day = max(first, start)
        while day <= min(last, end):
            days.add(day)
            day += dt.timedelta(days=1)
    return days


def _latest_forecasts(
    *, store: Store, product: Product, start: dt.date, end: dt.date, name: str
) -> dict[dt.date, list[tuple[bool, VersionForecast]]]:
    """Per target day, each version's forecast from its latest run made on or before the day
    (a run made on the day itself read the sales before it: what the T-1 backtest scores), with
    whether that run was served."""
    forecast, version = Forecast._meta.db_table, ModelVersion._meta.db_table
    sql = f"""
        SELECT DISTINCT ON (f.model_version_id, f.target_date)
            f.model_version_id, v.version, v.version_number, f.target_date, f.made_on,
            f.value, f.lower, f.upper, f.served
        FROM {forecast} f JOIN {version} v ON v.id = f.model_version_id
        WHERE f.store_id = %s AND f.product_id = %s AND v.name = %s
          AND f.target_date BETWEEN %s AND %s AND f.made_on <= f.target_date
        ORDER BY f.model_version_id, f.target_date, f.made_on DESC
    """
    found: dict[dt.date, list[tuple[bool, VersionForecast]]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [store.pk, product.pk, name, start, end])
        for pk, label, number, day, made_on, value, lower, upper, served in cursor.fetchall():
            found.setdefault(day, []).append(
                (
                    served,
                    VersionForecast(
                        version_id=pk,
                        version=label,
                        version_number=number,
                        made_on=made_on,
                        forecast=value,
                        lower=lower,
                        upper=upper,
                    ),
                )
            )
    return found


def _split(
    rows: list[tuple[bool, VersionForecast]],
) -> tuple[VersionForecast | None, list[VersionForecast]]:
    """The served forecast of a day (of the latest served run: a former champion's older run
    was replaced by it) and the shadow versions' forecasts, oldest version first."""
    served_rows = [each for was_served, each in rows if was_served]
    served = max(served_rows, key=lambda each: (each.made_on, each.version_number), default=None)
    shadows = sorted(
        (each for was_served, each in rows if not was_served),
        key=lambda each: each.version_number,
    )
    return served, [
        each for each in shadows if served is None or each.version_id != served.version_id
    ]
