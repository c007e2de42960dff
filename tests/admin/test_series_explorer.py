"""The series explorer: one store/product day by day, its actuals, served forecast and band,
shadows, stock-outs, promotions and the serving version of each day."""

import datetime as dt
import re

import pytest
from django.contrib.auth import get_user_model

from mlops.models import ModelVersion
from tests.admin.conftest import logged_in
from tests.admin.factories import (
    PROMOTION_DAYS,
    SERIES_DAYS,
    SHADOW_DAYS,
    STOCK_OUT_DAYS,
    build_series_days,
)
from tests.mlops.factories import ModelVersionFactory
from tests.tenancy import PASSWORD

LAST_DAY = dt.date(2026, 5, 31)


def svg(html: str, title_start: str) -> str:
    """The chart whose accessible label starts with `title_start`."""
    found = re.search(rf'<svg[^>]*aria-label="{re.escape(title_start)}[^"]*".*?</svg>', html, re.S)
    assert found, f"no chart {title_start!r}"
    return found.group(0)


@pytest.fixture
def series():
    champion = ModelVersionFactory(status=ModelVersion.Status.CHAMPION)
    shadow = ModelVersionFactory(status=ModelVersion.Status.SHADOW)
    data = build_series_days(served_by=champion, shadow=shadow, last_day=LAST_DAY)
    return data, champion, shadow


def test_the_explorer_charts_each_day_of_the_series(viewer, series):
    data, champion, shadow = series

    html = logged_in("vera").get("/admin/series/?store=S001&product=SKU001").content.decode()

    # Without dates: the 56 days up to the latest sales day.
    chart = svg(html, "S001 / SKU001")
    assert f'data-days="{SERIES_DAYS}"' in chart
    assert chart.count('class="point actual"') == SERIES_DAYS - len(STOCK_OUT_DAYS)
    assert chart.count('class="point served"') == SERIES_DAYS
    assert chart.count('class="point shadow shadow-0"') == SHADOW_DAYS
    assert f"{shadow.version} (shadow)" in chart
    assert chart.count('class="band served-band"') == 1
    assert chart.count('class="day-mark promotion-day"') == len(PROMOTION_DAYS)
    assert chart.count('class="day-mark censored-day"') == len(STOCK_OUT_DAYS)
    strip = re.search(r'<svg class="serving-strip".*?</svg>', html, re.S).group(0)
    assert strip.count(f'data-version="{champion.version}"') == SERIES_DAYS
    runs = re.search(r'<table class="arena-table" id="serving-runs">.*?</table>', html, re.S)
    assert re.findall(r"<td>(.*?)</td>", runs.group(0))[:3] == [
        champion.version,
        "2026-04-06",
        "2026-05-31",
    ]


def test_a_range_shows_its_days_only(viewer, series):
    url = "/admin/series/?store=S001&product=SKU001&start=2026-05-20&end=2026-06-02"

    html = logged_in("vera").get(url).content.decode()

    chart = svg(html, "S001 / SKU001")
    assert 'data-days="14"' in chart
    # Sales and forecasts end on May 31: two days without either.
    assert chart.count('class="point actual"') == 12
    assert chart.count('class="point served"') == 12


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("store=S404&product=SKU001", "No series S404/SKU001."),
        (
            "store=S001&product=SKU001&start=2026-05-20&end=2026-05-01",
            "The end is before the start.",
        ),
        ("store=S001&product=SKU001&start=2025-01-01&end=2026-05-01", "Give at most 366 days."),
    ],
)
def test_an_unknown_series_or_a_bad_range_says_why_and_draws_nothing(viewer, series, query, error):
    html = logged_in("vera").get(f"/admin/series/?{query}").content.decode()

    assert error in html
    assert '<svg class="line-chart time-chart"' not in html


def test_the_search_form_is_on_the_home_page_and_needs_a_role(viewer, series):
    home = logged_in("vera").get("/admin/").content.decode()
    card = re.search(
        r'<section class="arena-card" id="series-explorer-card">.*?</section>', home, re.S
    )
    assert 'action="/admin/series/"' in card.group(0)
    get_user_model().objects.create_user("norole", password=PASSWORD, is_staff=True)

    response = logged_in("norole").get("/admin/series/?store=S001&product=SKU001")

    assert response.status_code == 403
