"""Charts laid out on the server: the geometry an SVG template draws, no JS, no CDN."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

# Room around the plot for the axis labels (left, right, top, bottom), in SVG user units.
MARGIN = (64, 34, 40, 56)
NICE_STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Frame:
    """A chart's canvas: its title, the plot area inside the margins, and the axes' ticks."""

    title: str
    y_label: str
    width: int
    height: int
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)

    @property
    def left(self) -> float:
        return MARGIN[0]

    @property
    def right(self) -> float:
        return self.width - MARGIN[1]

    @property
    def top(self) -> float:
        return MARGIN[2]

    @property
    def bottom(self) -> float:
        return self.height - MARGIN[3]

    @property
    def middle_x(self) -> float:
        return (self.left + self.right) / 2

    @property
    def middle_y(self) -> float:
        return (self.top + self.bottom) / 2

    @property
    def x_label_y(self) -> float:
        return self.bottom + 40

    @property
    def y_label_x(self) -> float:
        return 14.0

    def y_of(self, value: float, y_top: float) -> float:
        return self.bottom - value / y_top * (self.bottom - self.top)

    def value_ticks(self, y_top: float, y_step: float) -> list[Tick]:
        return [
            Tick(
                position=round(self.y_of(k * y_step, y_top), 1),
                label=tick_label(k * y_step, y_step),
            )
            for k in range(round(y_top / y_step) + 1)
        ]


def nice_ceiling(value: float) -> tuple[float, float]:
    """The top of a y axis starting at zero that holds `value`, and its tick step (1-2-2.5-5)."""
    if value <= 0 or math.isnan(value):
        return 1.0, 0.25
    rough_step = value / 4
    magnitude = 10 ** math.floor(math.log10(rough_step))
    step = next(s * magnitude for s in NICE_STEPS if s * magnitude >= rough_step)
    top = math.ceil(value / step - 1e-9) * step
    return top, step


def tick_label(value: float, step: float) -> str:
    """A tick label with as many decimals as the step needs (2.5 → one, 0.25 → two)."""
    decimals = 0
    while decimals < 6 and abs(round(step, decimals) - step) > 1e-9 * max(step, 1):
        decimals += 1
    return f"{value:.{decimals}f}"


# -- line charts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """One line: a label for the legend, a CSS class for its colour, and its (day, value) points."""

    label: str
    css_class: str
    points: list[tuple[dt.date, float | None]]


@dataclass(frozen=True)
class PlotPoint:
    x: float
    y: float
    tooltip: str


@dataclass(frozen=True)
class PlotLine:
    label: str
    css_class: str
    path: str
    points: list[PlotPoint]


@dataclass(frozen=True)
class LineChart(Frame):
    """Everything `admin/mlops/includes/line_chart.html` needs to draw one chart."""

    unit: str = ""
    lines: list[PlotLine] = field(default_factory=list)
    # Days whose demand was censored by a stock-out: marked, since their values are not scored.
    censored: list[PlotPoint] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(line.points for line in self.lines)

    @property
    def n_points(self) -> int:
        return sum(len(line.points) for line in self.lines)


def line_chart(
    *,
    title: str,
    y_label: str,
    unit: str,
    series: list[Series],
    width: int = 560,
    height: int = 280,
    censored_days: tuple[dt.date, ...] = (),
) -> LineChart:
    """Lay out `series` on shared axes: time on x (one tick per day that has a point), zero to
    a rounded maximum on y, each known value a point with a tooltip. `unit` is written after
    each value (" units", "%"). Each of `censored_days` inside the chart's days gets a mark on
    the x axis (a stock-out: that day's demand is unknown)."""
    frame = Frame(title=title, y_label=y_label, width=width, height=height)
    days = sorted({day for each in series for day, value in each.points if value is not None})
    if not days:
        return LineChart(title=title, y_label=y_label, width=width, height=height, unit=unit)
    y_top, y_step = nice_ceiling(
        max(value for each in series for _, value in each.points if value is not None)
    )
    first, last = days[0], days[-1]
    span = max((last - first).days, 1)

    def x_of(day: dt.date) -> float:
        if first == last:
            return frame.middle_x
        return frame.left + (day - first).days / span * (frame.right - frame.left)

    every = max(1, math.ceil(len(days) / 7))  # at most ~7 date labels, so they never overlap
    x_ticks = [
        Tick(position=round(x_of(day), 1), label=day.strftime("%b %d"))
        for index, day in enumerate(days)
        if index % every == 0 or index == len(days) - 1
    ]
    lines = []
    for each in series:
        known = sorted((day, value) for day, value in each.points if value is not None)
        points = [
            PlotPoint(
                x=round(x_of(day), 1),
                y=round(frame.y_of(value, y_top), 1),
                tooltip=f"{each.label}, window ending {day:%Y-%m-%d}: {value:.2f}{unit}",
            )
            for day, value in known
        ]
        path = " ".join(
            f"{'M' if index == 0 else 'L'}{point.x},{point.y}" for index, point in enumerate(points)
        )
        lines.append(PlotLine(label=each.label, css_class=each.css_class, path=path, points=points))
    return LineChart(
        title=title,
        y_label=y_label,
        width=width,
        height=height,
        x_ticks=x_ticks,
        y_ticks=frame.value_ticks(y_top, y_step),
        unit=unit,
        lines=lines,
        censored=[
            PlotPoint(
                x=round(x_of(day), 1),
                y=frame.bottom,
                tooltip=f"{day:%Y-%m-%d}: out of stock, demand censored (not scored)",
            )
            for day in sorted(set(censored_days))
            if first <= day <= last
        ],
    )


# -- bar charts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css_class: str
    tooltip: str


@dataclass(frozen=True)
class BarChart(Frame):
    """Everything `admin/mlops/includes/bar_chart.html` needs: groups of bars on one axis."""

    bars: list[Bar] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (label, css class)

    @property
    def empty(self) -> bool:
        return not self.bars

    @property
    def n_points(self) -> int:
        return len(self.bars)


def bar_chart(
    *,
    title: str,
    y_label: str,
    unit: str,
    groups: list[tuple[str, list[tuple[str, str, float | None]]]],
    width: int = 560,
    height: int = 280,
) -> BarChart:
    """Lay out one group of bars per label ((series label, css class, value) each), from zero
    to a rounded maximum; an unknown value leaves a gap."""
    frame = Frame(title=title, y_label=y_label, width=width, height=height)
    legend: list[tuple[str, str]] = []
    for _, members in groups:
        for label, css_class, _ in members:
            if (label, css_class) not in legend:
                legend.append((label, css_class))
    values = [value for _, members in groups for _, _, value in members if value is not None]
    if not values:
        return BarChart(title=title, y_label=y_label, width=width, height=height, legend=legend)
    y_top, y_step = nice_ceiling(max(values))
    group_width = (frame.right - frame.left) / len(groups)
    bar_width = min(48.0, group_width * 0.7 / max(len(legend), 1))
    bars, x_ticks = [], []
    for index, (group_label, members) in enumerate(groups):
        centre = frame.left + group_width * (index + 0.5)
        x_ticks.append(Tick(position=round(centre, 1), label=group_label))
        first = centre - bar_width * len(members) / 2
        for position, (label, css_class, value) in enumerate(members):
            if value is None:
                continue
            top = frame.y_of(value, y_top)
            bars.append(
                Bar(
                    x=round(first + position * bar_width + 1, 1),
                    y=round(top, 1),
                    width=round(bar_width - 2, 1),
                    height=round(frame.bottom - top, 1),
                    css_class=css_class,
                    tooltip=f"{group_label}, {label}: {value:.2f}{unit}",
                )
            )
    return BarChart(
        title=title,
        y_label=y_label,
        width=width,
        height=height,
        x_ticks=x_ticks,
        y_ticks=frame.value_ticks(y_top, y_step),
        bars=bars,
        legend=legend,
    )


# -- ranked horizontal bars (feature importance) --------------------------------------------------


@dataclass(frozen=True)
class RankedBar:
    label: str
    label_x: float
    label_y: float
    x: float
    y: float
    width: float
    height: float
    value_label: str
    value_x: float
    css_class: str
    tooltip: str


@dataclass(frozen=True)
class RankedBarChart:
    """Everything `admin/mlops/includes/ranked_bar_chart.html` needs: one labelled horizontal
    bar per row, largest first, on a value axis from zero."""

    title: str
    x_label: str
    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    bars: list[RankedBar] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.bars

    @property
    def n_points(self) -> int:
        return len(self.bars)

    @property
    def middle_x(self) -> float:
        return (self.left + self.right) / 2

    @property
    def x_label_y(self) -> float:
        return self.bottom + 34


def ranked_bar_chart(
    *,
    title: str,
    x_label: str,
    unit: str,
    rows: list[tuple[str, float]],
    css_class: str,
    width: int = 560,
    label_width: int = 170,
    row_height: int = 20,
) -> RankedBarChart:
    """One bar per (label, value) row in the order given, from zero to a rounded maximum on a
    shared value axis. A negative value (a shuffled feature that helped by chance) draws no
    bar length; its label and tooltip still say the value. `unit` follows each value."""
    top, bottom_room, right_room = 34.0, 46.0, 64.0
    height = int(top + row_height * max(len(rows), 1) + bottom_room)
    left, right = float(label_width), float(width - right_room)
    bottom = float(height - bottom_room)
    x_top, x_step = nice_ceiling(max([value for _, value in rows] + [0.0]))

    def x_of(value: float) -> float:
        return left + max(value, 0.0) / x_top * (right - left)

    bars = []
    for index, (label, value) in enumerate(rows):
        y = top + index * row_height + 3
        end = x_of(value)
        bars.append(
            RankedBar(
                label=label,
                label_x=left - 6,
                label_y=round(y + row_height / 2 + 1, 1),
                x=left,
                y=round(y, 1),
                width=round(end - left, 1),
                height=row_height - 6,
                value_label=f"{value:.3g}{unit}",
                value_x=round(end + 4, 1),
                css_class=css_class,
                tooltip=f"{label}: {value:.4g}{unit}",
            )
        )
    ticks = [
        Tick(position=round(x_of(k * x_step), 1), label=tick_label(k * x_step, x_step))
        for k in range(round(x_top / x_step) + 1)
    ]
    return RankedBarChart(
        title=title,
        x_label=x_label,
        width=width,
        height=height,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        bars=bars,
        x_ticks=ticks,
    )
