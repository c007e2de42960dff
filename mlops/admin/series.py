"""The series explorer: one store/product over a run of days, its actuals (stock-outs and
promotions marked), the served forecast with its 80% band, each shadow's forecast, and which
version served each day."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlencode

from django import forms
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import reverse

from forecasting.models import Product, Store
from mlops.admin.charts import Series
from mlops.admin.time_charts import Band, DayMarks, TimeChart, time_chart
from mlops.series_selectors import (
    MAX_DAYS,
    SeriesHistory,
    UnknownSeriesError,
    default_range,
    series_history,
)

# The codes offered as the form's suggestions (a browser datalist); longer lists are typed.
SUGGESTIONS = 2000
SHADOW_COLOURS = 6


def explorer_url(
    *, store: str = "", product: str = "", start: dt.date | None = None, end: dt.date | None = None
) -> str:
    """The explorer's address for a series (and days); without one, its search form."""
    query = {"store": store, "product": product}
    if start is not None and end is not None:
        query.update(start=start.isoformat(), end=end.isoformat())
    base = reverse("admin:series_explorer")
    return f"{base}?{urlencode(query)}" if store and product else base


class SeriesSearchForm(forms.Form):
    store = forms.CharField(max_length=64, help_text="Store code")
    product = forms.CharField(max_length=64, help_text="Product SKU")
    start = forms.DateField(required=False, help_text="Default: 56 days before the end")
    end = forms.DateField(required=False, help_text="Default: the latest sales day")

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        start, end = data.get("start"), data.get("end")
        if end is None:
            end = default_range()[1] if start is None else start + dt.timedelta(days=55)
        if start is None:
            start = end - dt.timedelta(days=55)
        if end < start:
            raise forms.ValidationError("The end is before the start.")
        if (end - start).days + 1 > MAX_DAYS:
            raise forms.ValidationError(f"Give at most {MAX_DAYS} days.")
        data.update(start=start, end=end)
        return data


@dataclass(frozen=True)
class StripCell:
    """One day of the serving strip: which version served it (aligned with the chart's days)."""

    day: dt.date
    x: float
    width: float
    version: str
    css_class: str
    first_of_run: bool


def explorer_chart(history: SeriesHistory) -> TimeChart:
    days = history.days
    shadow_lines = []
    for index, version in enumerate(history.shadow_versions):
        values = [
            (day.date, next((s.forecast for s in day.shadows if s.version == version), None))
            for day in days
        ]
        shadow_lines.append(
            Series(f"{version} (shadow)", f"shadow shadow-{index % SHADOW_COLOURS}", values)
        )
    return time_chart(
        title=f"{history.store.code} / {history.product.sku}: actual and forecasts",
        y_label="Units per day",
        unit=" units",
        days=[day.date for day in days],
        series=[
            Series(
                "actual",
                "actual",
                [(day.date, None if day.censored else day.actual) for day in days],
            ),
            Series(
                "served forecast",
                "served",
                [(day.date, day.served.forecast if day.served else None) for day in days],
            ),
            *shadow_lines,
        ],
        bands=(
            Band(
                "served 80% interval",
                "served-band",
                [
                    (day.date, day.served.lower, day.served.upper)
                    for day in days
                    if day.served is not None
                ],
            ),
        ),
        day_marks=(
            DayMarks(
                "promotion",
                "promotion-day",
                [(day.date, f"{day.date}: on promotion") for day in days if day.promotion],
            ),
            DayMarks(
                "stock-out",
                "censored-day",
                [
                    (day.date, f"{day.date}: out of stock, demand censored (not scored)")
                    for day in days
                    if day.censored
                ],
            ),
        ),
        x_label="Day (shaded: promotion yellow, stock-out grey)",
        height=340,
    )


def serving_strip(history: SeriesHistory, chart: TimeChart) -> list[StripCell]:
    """The serving version of each day, laid out under the chart's day slots."""
    colours: dict[str, str] = {}
    cells, previous = [], None
    for index, day in enumerate(history.days):
        version = day.served.version if day.served else ""
        if version and version not in colours:
            colours[version] = f"serving-{len(colours) % SHADOW_COLOURS}"
        cells.append(
            StripCell(
                day=day.date,
                x=round(chart.left + index * chart.day_width, 1),
                width=chart.day_width,
                version=version,
                css_class=colours.get(version, "serving-none"),
                first_of_run=version != previous,
            )
        )
        previous = version
    return cells


def series_explorer(request, admin_site):
    """GET with store and product (and optionally start, end): the series' page; else the
    search form."""
    if not request.user.has_perm("forecasting.view_forecast"):
        raise PermissionDenied
    form = SeriesSearchForm(request.GET or None)
    history = chart = None
    if form.is_bound and form.is_valid():
        try:
            history = series_history(
                store_code=form.cleaned_data["store"],
                product_sku=form.cleaned_data["product"],
                start=form.cleaned_data["start"],
                end=form.cleaned_data["end"],
            )
        except UnknownSeriesError as exc:
            form.add_error(None, str(exc))
    if history is not None:
        chart = explorer_chart(history)
    title = f"Series {history.store.code} / {history.product.sku}" if history else "Series explorer"
    context = {
        **admin_site.each_context(request),
        "title": title,
        "form": form,
        "history": history,
        "chart": chart,
        "strip": serving_strip(history, chart) if history else [],
        "store_codes": Store.objects.order_by("code").values_list("code", flat=True)[:SUGGESTIONS],
        "product_skus": Product.objects.order_by("sku").values_list("sku", flat=True)[:SUGGESTIONS],
    }
    return TemplateResponse(request, "admin/mlops/series_explorer.html", context)
