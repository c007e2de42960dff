"""Server-drawn charts: rounded axes, points inside the plot, gaps for unknown values."""

import datetime as dt

import pytest

from mlops.admin.charts import Series, bar_chart, line_chart, nice_ceiling, ranked_bar_chart
from mlops.admin.importance import share_rows
from mlops.admin.time_charts import Band, DayMarks, Marker, Rule, nice_range, time_chart

pytestmark = pytest.mark.nodb


@pytest.mark.parametrize(
    ("value", "top", "labels"),
    [
        (9.7, 10.0, ["0.0", "2.5", "5.0", "7.5", "10.0"]),
        (150.0, 150.0, ["0", "50", "100", "150"]),
        (0.9, 1.0, ["0.00", "0.25", "0.50", "0.75", "1.00"]),
        (13.2, 15.0, ["0", "5", "10", "15"]),
    ],
)
def test_y_axis_runs_from_zero_to_a_round_top_with_readable_ticks(value, top, labels):
    chart = line_chart(
        title="t", y_label="y", unit="", series=[Series("a", "a", [(dt.date(2026, 1, 1), value)])]
    )

    assert nice_ceiling(value)[0] == pytest.approx(top)
    assert [tick.label for tick in chart.y_ticks] == labels
    assert chart.y_ticks[0].position == chart.bottom and chart.y_ticks[-1].position == chart.top


def test_line_points_span_the_plot_by_date_and_skip_unknown_values():
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=7 * k) for k in range(4)]
    chart = line_chart(
        title="MAE",
        y_label="MAE (units)",
        unit=" units",
        series=[
            Series("v2", "this-version", list(zip(days, [4.0, 5.0, None, 8.0], strict=True))),
            Series("v1", "champion", list(zip(days, [6.0, 6.0, 6.0, 6.0], strict=True))),
        ],
    )

    mine, champion = chart.lines
    assert len(mine.points) == 3 and chart.n_points == 7
    assert mine.points[0].x == chart.left and mine.points[-1].x == chart.right
    assert mine.points[-1].y == chart.top  # 8.0 is the axis top
    assert all(chart.top <= p.y <= chart.bottom for line in chart.lines for p in line.points)
    assert mine.path.startswith("M64.0,") and mine.path.count("L") == 2
    assert mine.points[1].tooltip == "v2, window ending 2026-01-08: 5.00 units"


def test_bars_share_one_axis_and_an_unknown_value_leaves_a_gap():
    chart = bar_chart(
        title="MAE per segment",
        y_label="MAE",
        unit=" units",
        groups=[
            ("Electronics", [("Champion", "champion", 4.0), ("Experimental", "this-version", 2.0)]),
            ("Grocery", [("Champion", "champion", 3.0), ("Experimental", "this-version", None)]),
        ],
    )

    assert len(chart.bars) == 3
    assert chart.legend == [("Champion", "champion"), ("Experimental", "this-version")]
    tallest = max(chart.bars, key=lambda bar: bar.height)
    assert tallest.y == chart.top and tallest.y + tallest.height == chart.bottom
    half = next(bar for bar in chart.bars if bar.tooltip.endswith("2.00 units"))
    assert half.height == pytest.approx(tallest.height / 2, abs=0.1)
    assert [tick.label for tick in chart.x_ticks] == ["Electronics", "Grocery"]


def test_a_chart_without_values_says_it_is_empty():
    assert line_chart(title="t", y_label="y", unit="", series=[Series("a", "a", [])]).empty
    assert bar_chart(title="t", y_label="y", unit="", groups=[]).empty


def test_censored_days_inside_the_chart_are_marked_on_the_x_axis():
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=k) for k in range(5)]
    chart = line_chart(
        title="Sales",
        y_label="units",
        unit=" units",
        series=[
            Series("actual", "actual", list(zip(days, [3.0, 0.0, 0.0, 4.0, 5.0], strict=True)))
        ],
        censored_days=(days[1], days[2], dt.date(2025, 12, 1)),
    )
    assert [mark.tooltip[:10] for mark in chart.censored] == ["2026-01-02", "2026-01-03"]
    assert all(mark.y == chart.bottom for mark in chart.censored)
    assert chart.censored[0].x == chart.lines[0].points[1].x


# -- daily charts (drift page, series explorer) -------------------------------------------------

DAYS = [dt.date(2026, 3, 1) + dt.timedelta(days=k) for k in range(10)]


def test_a_daily_chart_has_a_slot_per_day_and_a_point_per_known_value():
    values = [1.0, 2.0, None, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    chart = time_chart(
        title="t",
        y_label="y",
        unit=" units",
        days=DAYS,
        series=[Series("a", "a", [*zip(DAYS, values, strict=True), (dt.date(2026, 4, 1), 99.0)])],
    )

    (line,) = chart.lines
    assert chart.n_days == 10 and len(line.points) == 9  # the gap, and no day outside
    assert line.path.count("M") == 2  # the unknown day breaks the line
    xs = [point.x for point in line.points]
    assert xs[0] == pytest.approx(chart.left + chart.day_width / 2, abs=0.1)
    assert xs[-1] == pytest.approx(chart.right - chart.day_width / 2, abs=0.1)
    assert line.points[-1].y == chart.top and chart.zero_y is None


def test_negative_values_extend_the_axis_below_zero_on_round_ticks():
    chart = time_chart(
        title="bias",
        y_label="%",
        unit="%",
        days=DAYS[:3],
        series=[Series("bias", "b", list(zip(DAYS[:3], [1.0, -15.0, -7.0], strict=True)))],
    )

    assert [tick.label for tick in chart.y_ticks] == ["-15", "-10", "-5", "0", "5"]
    assert chart.y_ticks[0].position == chart.bottom and chart.y_ticks[-1].position == chart.top
    assert chart.zero_y == chart.y_ticks[3].position
    assert nice_range(-15.0, 1.0) == (-15.0, 5.0, 5.0)


def test_bands_rules_markers_and_day_marks_sit_on_their_days_and_values():
    chart = time_chart(
        title="t",
        y_label="y",
        unit="",
        days=DAYS,
        series=[Series("a", "a", [(day, 5.0) for day in DAYS])],
        bands=(Band("80%", "band", [(DAYS[0], 2.0, 8.0), (DAYS[1], 2.0, 8.0), (DAYS[5], 1, 9)]),),
        rules=(Rule("threshold", "threshold", 10.0),),
        markers=(
            Marker("change", "change-date", DAYS[4]),
            Marker("gone", "x", dt.date(2025, 1, 1)),
        ),
        day_marks=(DayMarks("promotion", "promotion-day", [(DAYS[2], "on promotion")]),),
    )

    (band,) = chart.bands
    assert band.path.count("Z") == 2  # days 0-1, then day 5 alone
    (rule,) = chart.rules
    assert rule.y == chart.top  # 10 is the axis top
    (marker,) = chart.markers
    assert marker.x == chart.lines[0].points[4].x
    (mark,) = chart.day_marks
    assert mark.x + mark.width / 2 == pytest.approx(chart.lines[0].points[2].x, abs=0.1)
    assert mark.tooltip == "on promotion"


def test_ranked_bars_keep_the_order_given_and_share_one_axis_from_zero():
    chart = ranked_bar_chart(
        title="Importance",
        x_label="MAE increase",
        unit="",
        rows=[("lag_7", 3.0), ("day_of_week", 1.5), ("store_code", -0.2)],
        css_class="this-version",
    )

    assert [bar.label for bar in chart.bars] == ["lag_7", "day_of_week", "store_code"]
    assert chart.bars[0].width == pytest.approx(2 * chart.bars[1].width)
    assert chart.bars[2].width == 0 and chart.bars[2].value_label == "-0.2"
    assert all(bar.x == chart.left for bar in chart.bars)
    assert [bar.y for bar in chart.bars] == sorted(bar.y for bar in chart.bars)
    assert chart.x_ticks[0].position == chart.left and chart.x_ticks[-1].label == "3"
    assert chart.n_points == 3 and not chart.empty


def test_share_changes_are_said_in_points_more_or_less_never_a_bare_sign():
    champion = {
        "features": [{"feature": "a", "share_pct": 60.0}, {"feature": "b", "share_pct": 40.0}]
    }
    challenger = {
        "features": [{"feature": "a", "share_pct": 45.0}, {"feature": "c", "share_pct": 55.0}]
    }

    rows = share_rows(champion=champion, challenger=challenger)

    assert [
        (row.feature, row.champion_share, row.challenger_share, row.change) for row in rows
    ] == [
        ("a", "60.0%", "45.0%", "15.0 points less"),
        ("c", "not used", "55.0%", "55.0 points more"),
        ("b", "40.0%", "not used", "40.0 points less"),
    ]
