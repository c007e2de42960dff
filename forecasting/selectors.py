"""Reads of the forecasting app: sales panels straight from PostgreSQL COPY, active series, dates."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
from django.db.models import Max, Min

from forecasting.known_inputs import calendar_rows, promotion_known_from
from forecasting.models import PlannedPromotion, Product, Sale, Store
from forecasting.panel import Panel
from forecasting.pgcopy import EPOCH, copy_out_csv, copy_out_series, parse_csv

ACTIVE_SERIES_DAYS = 28
_DAY_COLUMNS = {
    "day": pa.int32(),
    "quantity": pa.float32(),
    "on_promotion": pa.float32(),
    "price": pa.float32(),
    "in_stock": pa.int8(),
}


def load_sales_panel(
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    departments: Sequence[str] | None = None,
    stores: Sequence[str] | None = None,
    products: Sequence[str] | None = None,
) -> Panel:
    """The tenant's daily sales from `start` to `end` (both included; default all) as a Panel,
    optionally only for some departments, store codes and product SKUs.

    The panel runs from the first to the last day with a sale in that range (of the products
    asked, or of their stores when `products` is given, so that a few series' panel has the
    days a panel of every series has). A series absent on a day its store reported (any
    product) is a zero; a day its store did not report is NaN.
    """
    where, params, reported_where, reported_params = _sale_filters(
        start=start, end=end, stores=stores, departments=departments, products=products
    )

    table = Sale._meta.db_table
    # One COPY row per series, its days as CSV text (see copy_out_series).
    series_store_id, series_product_id, series_days, days_csv = copy_out_series(
        f"SELECT s.store_id, s.product_id, count(*), string_agg(concat_ws(',', "
        f"s.date - DATE '1970-01-01', s.quantity, s.on_promotion::int, "
        f"coalesce(s.price::text, ''), s.in_stock::int), E'\\n') || E'\\n' "
        f"FROM {table} s WHERE {' AND '.join(where)} GROUP BY s.store_id, s.product_id",
        params,
    )
    if not len(series_days):
        return Panel.empty()
    rows = parse_csv(days_csv, _DAY_COLUMNS)
    day = rows.column("day").to_numpy().astype(np.int64)
    reported = None
    if departments is not None or products is not None:
        reported = _reported_days(reported_where, reported_params)
    first_day, last_day = _day_span(day, reported=reported if products is not None else None)
    n_days = last_day - first_day + 1

    # Series in the order Panel.from_frame gives them: by store code, then by SKU.
    store_rows = list(Store.objects.order_by("code").values_list("id", "code"))
    product_rows = list(Product.objects.order_by("sku").values_list("id", "sku", "department"))
    store_index = pd.Index([pk for pk, _ in store_rows])
    store_position = store_index.get_indexer(series_store_id)
    product_position = pd.Index([pk for pk, _, _ in product_rows]).get_indexer(series_product_id)
    order = np.lexsort((product_position, store_position))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    series_store = store_position[order]
    series_product = product_position[order]

    if reported is None:
        store_days = (np.repeat(store_position, series_days), day - first_day)
    else:
        in_range = (reported[1] >= first_day) & (reported[1] <= last_day)
        store_days = (
            store_index.get_indexer(reported[0][in_range]),
            reported[1][in_range] - first_day,
        )
    store_reported = np.zeros((len(store_rows), n_days), dtype=bool)
    store_reported[store_days] = True
    quantity, on_promotion, price, censored = _day_values(
        rows,
        cell=np.repeat(rank, series_days) * n_days + (day - first_day),
        reported=store_reported[series_store],
    )

    store_codes = np.array([code for _, code in store_rows], dtype=object)
    product_rows = np.array(product_rows, dtype=object).reshape(-1, 3)
    return Panel(
        stores=store_codes[series_store],
        products=product_rows[series_product, 1],
        departments=product_rows[series_product, 2],
        dates=_dates(first_day, n_days),
        quantity=quantity,
        on_promotion=on_promotion,
        price=price,
        censored=censored,
    )


def _dates(first_day: int, n_days: int) -> pd.DatetimeIndex:
    """The panel's days from day number `first_day` (days since 1970-01-01)."""
    first = pd.Timestamp(EPOCH + dt.timedelta(days=first_day))
    return pd.date_range(first, periods=n_days, freq="D", name="date")


def _day_span(
    day: np.ndarray, *, reported: tuple[np.ndarray, np.ndarray] | None
) -> tuple[int, int]:
    """The first and last day number of the panel: those of the sales read, widened to the days
    their stores `reported` when a few products are read (days before a product's first sale
    or after its last that its store reported are zeros of it, as in a panel of every series)."""
    first_day, last_day = int(day.min()), int(day.max())
    if reported is not None:
        first_day = min(first_day, int(reported[1].min()))
        last_day = max(last_day, int(reported[1].max()))
    return first_day, last_day


def _sale_filters(
    *,
    start: dt.date | None,
    end: dt.date | None,
    stores: Sequence[str] | None,
    departments: Sequence[str] | None,
    products: Sequence[str] | None = None,
) -> tuple[list[str], list, list[str], list]:
    """The WHERE conditions (and their parameters) on sales `s` of the days, stores,
    departments and products asked; then the same without the departments and products (which
    days each store reported)."""
    where, params = ["TRUE"], []
    if start is not None:
        where.append("s.date >= %s")
        params.append(start)
    if end is not None:
        where.append("s.date <= %s")
        params.append(end)
    if stores is not None:
        where.append(f"s.store_id IN (SELECT id FROM {Store._meta.db_table} WHERE code = ANY(%s))")
        params.append(list(stores))
    reported_where, reported_params = list(where), list(params)
    if departments is not None:
        where.append(
            f"s.product_id IN (SELECT id FROM {Product._meta.db_table} WHERE department = ANY(%s))"
        )
        params.append(list(departments))
    if products is not None:
        where.append(
            f"s.product_id IN (SELECT id FROM {Product._meta.db_table} WHERE sku = ANY(%s))"
        )
        params.append(list(products))
    return where, params, reported_where, reported_params


def _reported_days(where: list[str], params: list) -> tuple[np.ndarray, np.ndarray]:
    """The (store id, day number) pairs on which a store reported a sale of any product. A
    store that reported only other departments or products on a day still reported that day:
    the series asked for sold zero there, they are not unknown."""
    reported = copy_out_csv(
        f"SELECT DISTINCT s.store_id, s.date - DATE '1970-01-01' FROM {Sale._meta.db_table} s "
        f"WHERE {' AND '.join(where)}",
        params,
        {"store_id": pa.int64(), "day": pa.int32()},
    )
    return (
        reported.column("store_id").to_numpy(),
        reported.column("day").to_numpy().astype(np.int64),
    )


def _day_values(
    rows, *, cell: np.ndarray, reported: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Quantity, promotion, price and censored flag per series and day from the parsed rows
    (`cell`: each row's flat position): a day without a row is a zero where the store
    reported, else NaN."""
    quantity = np.where(reported, np.float32(0), np.float32(np.nan))
    quantity.reshape(-1)[cell] = rows.column("quantity").to_numpy()
    on_promotion = np.zeros(quantity.shape, dtype=np.float32)
    on_promotion.reshape(-1)[cell] = rows.column("on_promotion").to_numpy()
    price = np.full(quantity.shape, np.nan, dtype=np.float32)
    price.reshape(-1)[cell] = rows.column("price").to_numpy(zero_copy_only=False)
    # A zero sale while out of stock is censored demand: unknown, not zero.
    censored = np.zeros(quantity.shape, dtype=bool)
    censored.reshape(-1)[cell] = (rows.column("in_stock").to_numpy() == 0) & (
        rows.column("quantity").to_numpy() == 0
    )
    quantity[censored] = np.nan
    return quantity, on_promotion, price, censored


def promotion_calendar_rows(*, start: dt.date, end: dt.date) -> pd.DataFrame:
    """The planned promotions that touch the days from `start` to `end`, as
    `forecasting.known_inputs.CALENDAR_COLUMNS` (see `calendar_rows`)."""
    plans = PlannedPromotion.objects.filter(start_date__lte=end, end_date__gte=start).values_list(
        "store__code", "product__sku", "department", "start_date", "end_date", "known_since"
    )
    return calendar_rows(
        pd.DataFrame(
            list(plans),
            columns=["store", "product", "department", "start_date", "end_date", "known_since"],
        )
    )


def has_promotion_calendar() -> bool:
    """Whether the tenant keeps a promotion calendar (then unplanned days are not promoted)."""
    return PlannedPromotion.objects.exists()


def with_promotion_calendar(panel: Panel, *, end: dt.date | None = None) -> Panel:
    """The panel carrying the tenant's promotion calendar, extended with unknown sales up to
    `end` (target days) when that lies beyond it; unchanged when the tenant has no calendar."""
    if not panel.n_days or not has_promotion_calendar():
        return panel
    if end is not None:
        panel = panel.with_future_days((pd.Timestamp(end) - panel.last_day).days)
    rows = promotion_calendar_rows(start=panel.first_day.date(), end=panel.last_day.date())
    return panel.with_promotion_calendar(promotion_known_from(panel=panel, rows=rows))


def active_series(*, as_of: dt.date, days: int = ACTIVE_SERIES_DAYS) -> pd.DataFrame:
    """Series that sold anything in the `days` days up to and including `as_of`: a frame of
    store_id, product_id, store (code), product (SKU), department, ordered by store and SKU."""
    rows = (
        Sale.objects.filter(
            date__gt=as_of - dt.timedelta(days=days), date__lte=as_of, quantity__gt=0
        )
        .values_list("store_id", "product_id", "store__code", "product__sku", "product__department")
        .distinct()
        .order_by("store__code", "product__sku")
    )
    return pd.DataFrame(
        list(rows), columns=["store_id", "product_id", "store", "product", "department"]
    )


def sales_date_range() -> tuple[dt.date, dt.date] | None:
    """First and last day with a sale, or None when the tenant has no sales."""
    bounds = Sale.objects.aggregate(first=Min("date"), last=Max("date"))
    if bounds["first"] is None:
        return None
    return bounds["first"], bounds["last"]
