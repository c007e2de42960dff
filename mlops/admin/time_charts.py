"""Daily charts laid out on the server (the drift page, the series explorer): one slot per
calendar day, values below zero, shaded bands, threshold rules, day markers; drawn by
`admin/mlops/includes/time_chart.html` on `charts.py`'s frame, no JS, no CDN."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from mlops.admin.charts import Frame, PlotLine, PlotPoint, Series, Tick, nice_ceiling, tick_label


@dataclass(frozen=True)
class Band:
    """An interval drawn as a shaded area: (day, lower, upper) per day."""

    label: str
    css_class: str
    points: list[tuple[dt.date, float | None, float | None]]


@dataclass(frozen=True)
class Rule:
    """A horizontal line across the plot: a threshold or a baseline."""

    label: str
    css_class: str
    value: float


@dataclass(frozen=True)
class Marker:
    """A day marked by a vertical line across the plot (a change date)."""

    label: str
    css_class: str
    day: dt.date


@dataclass(frozen=True)
class DayMarks:
    """Days marked on the x axis (stock-outs, promotions), each with its own tooltip."""

    label: str
    css_class: str
    days: list[tuple[dt.date, str]]


@dataclass(frozen=True)
class PlotShape:
    """A laid-out band, rule, marker or day mark: its position and a tooltip."""

    label: str
    css_class: str
    x: float = 0.0
    y: float = 0.0
    width: float = 0.0
    path: str = ""
    tooltip: str = ""


@dataclass(frozen=True)
class TimeChart(Frame):
    """Everything `admin/mlops/includes/time_chart.html` needs: one x position per calendar day
    of `n_days`, lines with a point per known value, bands, rules, markers and day marks."""

    unit: str = ""
    x_label: str = "Day"
    n_days: int = 0
    day_width: float = 0.0
    zero_y: float | None = None
    lines: list[PlotLine] = field(default_factory=list)
    bands: list[PlotShape] = field(default_factory=list)
    rules: list[PlotShape] = field(default_factory=list)
    markers: list[PlotShape] = field(default_factory=list)
    day_marks: list[PlotShape] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(line.points for line in self.lines)

    @property
    def plot_height(self) -> float:
        return self.bottom - self.top


def nice_range(low: float, high: float) -> tuple[float, float, float]:
    """A y axis (bottom, top, step) that holds `low`..`high` and zero, on round ticks."""
    low, high = min(low, 0.0), max(high, 0.0)
    if low >= 0:
        top, step = nice_ceiling(high)
        return 0.0, top, step
    _, step = nice_ceiling(high - low)
    bottom = math.floor(low / step + 1e-9) * step
    top = max(math.ceil(high / step - 1e-9) * step, bottom + step)
    return bottom, top, step


def _path(points: list[tuple[float, float] | None]) -> str:
    """An SVG path through the points; None breaks the line (a day without a value)."""
    parts, pen_down = [], False
    for point in points:
        if point is None:
            pen_down = False
            continue
        parts.append(f"{'L' if pen_down else 'M'}{point[0]},{point[1]}")
        pen_down = True
    return " ".join(parts)


def time_chart(
    *,
    title: str,
    y_label: str,
    unit: str,
    days: list[dt.date],
    series: list[Series],
    bands: tuple[Band, ...] = (),
    rules: tuple[Rule, ...] = (),
    markers: tuple[Marker, ...] = (),
    day_marks: tuple[DayMarks, ...] = (),
    x_label: str = "Day",
    width: int = 980,
    height: int = 300,
) -> TimeChart:
    """Lay out daily values over the calendar days `days` (first to last; each day one slot,
    its points at the slot's centre), on a y axis from zero (or below, for negative values) to
    a rounded maximum. Values outside `days` are left out."""
    first = days[0] if days else dt.date.today()
    n_days = (days[-1] - first).days + 1 if days else 0
    plain = TimeChart(title=title, y_label=y_label, width=width, height=height)
    slot = (plain.right - plain.left) / max(n_days, 1)
    inside = {first + dt.timedelta(days=k): k for k in range(n_days)}
    values = [v for each in series for day, v in each.points if v is not None and day in inside]
    values += [v for band in bands for day, *bounds in band.points for v in bounds if v is not None]
    values += [rule.value for rule in rules]
    bottom, top, step = nice_range(min(values, default=0.0), max(values, default=0.0))

    def y_of(value: float) -> float:
        return round(
            plain.bottom - (value - bottom) / (top - bottom) * (plain.bottom - plain.top), 1
        )

    def x_of(day: dt.date) -> float:
        return round(plain.left + (inside[day] + 0.5) * slot, 1)

    every = max(1, math.ceil(n_days / 10))
    ticks = [
        Tick(position=x_of(day), label=day.strftime("%b %d"))
        for day, index in inside.items()
        if index % every == 0
    ]
    y_ticks = [
        Tick(position=y_of(bottom + k * step), label=tick_label(bottom + k * step, step))
        for k in range(round((top - bottom) / step) + 1)
    ]
    return TimeChart(
        title=title,
        y_label=y_label,
        width=width,
        height=height,
        x_ticks=ticks,
        y_ticks=y_ticks,
        unit=unit,
        x_label=x_label,
        n_days=n_days,
        day_width=round(slot, 2),
        zero_y=y_of(0.0) if bottom < 0 else None,
        lines=[_time_line(each, inside, x_of, y_of, unit) for each in series],
        bands=[_time_band(band, inside, x_of, y_of) for band in bands],
        rules=[_rule_shape(rule, y_of, unit) for rule in rules],
        markers=[_marker_shape(mark, x_of) for mark in markers if mark.day in inside],
        day_marks=_day_mark_shapes(day_marks, inside, x_of, slot),
    )


def _rule_shape(rule: Rule, y_of, unit: str) -> PlotShape:
    return PlotShape(
        label=rule.label,
        css_class=rule.css_class,
        y=y_of(rule.value),
        tooltip=f"{rule.label}: {rule.value:.3g}{unit}",
    )


def _marker_shape(mark: Marker, x_of) -> PlotShape:
    return PlotShape(
        label=mark.label,
        css_class=mark.css_class,
        x=x_of(mark.day),
        tooltip=f"{mark.label}: {mark.day:%Y-%m-%d}",
    )


def _day_mark_shapes(
    day_marks: tuple[DayMarks, ...], inside: dict, x_of, slot: float
) -> list[PlotShape]:
    """Each marked day of the chart as a slot-wide column."""
    return [
        PlotShape(
            label=marks.label,
            css_class=marks.css_class,
            x=round(x_of(day) - slot / 2, 1),
            width=round(slot, 1),
            tooltip=tooltip,
        )
        for marks in day_marks
        for day, tooltip in sorted(marks.days)
        if day in inside
    ]


def _time_line(each: Series, inside: dict, x_of, y_of, unit: str) -> PlotLine:
    by_day = {day: value for day, value in each.points if day in inside}
    points = [
        PlotPoint(
            x=x_of(day),
            y=y_of(value),
            tooltip=f"{each.label}, {day:%a %Y-%m-%d}: {value:.2f}{unit}",
        )
        for day, value in sorted(by_day.items())
        if value is not None
    ]
    path = _path(
        [(x_of(day), y_of(by_day[day])) if by_day.get(day) is not None else None for day in inside]
    )
    return PlotLine(label=each.label, css_class=each.css_class, path=path, points=points)


def _time_band(band: Band, inside: dict, x_of, y_of) -> PlotShape:
    """A band as closed areas, one per run of days that have both bounds."""
    known = {
        day: (lower, upper)
        for day, lower, upper in band.points
        if day in inside and lower is not None and upper is not None
    }
    runs: list[list[dt.date]] = []
    for day in inside:
        if day not in known:
            continue
        if runs and (day - runs[-1][-1]).days == 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    areas = []
    for run in runs:
        upper = [(x_of(day), y_of(known[day][1])) for day in run]
        lower = [(x_of(day), y_of(known[day][0])) for day in reversed(run)]
        areas.append(_path([*upper, *lower]) + " Z")
    return PlotShape(
        label=band.label,
        css_class=band.css_class,
        path=" ".join(areas),
        tooltip=f"{band.label}: {len(known)} day(s)",
    )
