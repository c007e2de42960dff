"""The daily T-1 backtest: stored forecasts against the day's sales, unknown actuals kept apart."""

import datetime as dt
from unittest import mock

import pytest

from forecasting.models import Forecast, Product, Sale, Store
from mlops.models import BacktestResult, ModelVersion, ShadowPrediction
from mlops.selectors import get_backtest_trend
from mlops.services import backtest_yesterday
from mlops.tasks import daily_backtest
from tests.mlops.factories import ModelVersionFactory

Status = ModelVersion.Status
DAY = dt.date(2025, 6, 10)


@pytest.fixture
def shop():
    """Two stores, three products; S1 reports DAY (P2 unsold), S2 sends nothing that day."""
    stores = {code: Store.objects.create(code=code) for code in ("S1", "S2")}
    products = {
        "P1": Product.objects.create(sku="P1", department="Grocery"),
        "P2": Product.objects.create(sku="P2", department="Grocery"),
        "P3": Product.objects.create(sku="P3", department="Electronics"),
    }
    # Five active series: each sold something five days earlier.
    earlier = DAY - dt.timedelta(days=5)
    for store, sku in (("S1", "P1"), ("S1", "P2"), ("S1", "P3"), ("S2", "P1"), ("S2", "P2")):
        Sale.objects.create(store=stores[store], product=products[sku], date=earlier, quantity=3)
    Sale.objects.create(store=stores["S1"], product=products["P1"], date=DAY, quantity=5)
    Sale.objects.create(store=stores["S1"], product=products["P3"], date=DAY, quantity=2)
    return stores, products


def add_forecasts(version, shop, *, made_on, values, target=DAY):
    stores, products = shop
    Forecast.objects.bulk_create(
        Forecast(
            model_version=version,
            store=stores[store],
            product=products[sku],
            made_on=made_on,
            target_date=target,
            value=value,
            lower=max(value - 1, 0),
            upper=value + 1,
        )
        for (store, sku), value in values.items()
    )


@pytest.fixture
def arena(shop):
    champion = ModelVersionFactory(status=Status.CHAMPION)
    challenger = ModelVersionFactory(status=Status.CHALLENGER)
    shadow = ModelVersionFactory(status=Status.SHADOW, segment="department:Electronics")
    archived = ModelVersionFactory(status=Status.ARCHIVED)
    candidate = ModelVersionFactory(status=Status.CANDIDATE)
    every_series = {
        ("S1", "P1"): 4,
        ("S1", "P2"): 1,
        ("S1", "P3"): 3,
        ("S2", "P1"): 6,
        ("S2", "P2"): 2,
    }
    add_forecasts(champion, shop, made_on=DAY, values=every_series)
    # An older run of the champion (two days ahead) is not the one scored.
    add_forecasts(
        champion, shop, made_on=DAY - dt.timedelta(days=1), values=dict.fromkeys(every_series, 100)
    )
    # The challenger's latest run for DAY was made three days before; it skips S2/P2.
    add_forecasts(
        challenger,
        shop,
        made_on=DAY - dt.timedelta(days=2),
        values={("S1", "P1"): 7, ("S1", "P2"): 0, ("S1", "P3"): 2, ("S2", "P1"): 1},
    )
    add_forecasts(shadow, shop, made_on=DAY, values={("S1", "P3"): 2.5})
    for version in (archived, candidate):
        add_forecasts(version, shop, made_on=DAY, values=every_series)
    return {"champion": champion, "challenger": challenger, "shadow": shadow}


def result_of(version) -> BacktestResult:
    return BacktestResult.objects.get(model_version=version, kind="t_minus_1", window_end=DAY)


def test_each_active_version_is_scored_on_its_latest_forecast_for_the_day(arena):
    results = backtest_yesterday(day=DAY)

    assert {row.model_version_id for row in results} == {v.pk for v in arena.values()}
    champion = result_of(arena["champion"])
    assert (champion.window_start, champion.window_end) == (DAY, DAY)
    # S1: P1 5 vs 4, P2 0 (no sale row, store reported) vs 1, P3 2 vs 3.
    assert champion.mae == 1.0
    assert champion.wape == pytest.approx(100 * 3 / 7)
    assert champion.bias == pytest.approx(100 * (8 - 7) / 7)
    assert champion.interval_coverage == 1.0
    assert champion.coverage == 1.0
    challenger = result_of(arena["challenger"])
    assert challenger.mae == pytest.approx(2 / 3)  # 5 vs 7, 0 vs 0, 2 vs 2
    assert challenger.coverage == pytest.approx(4 / 5)  # S2/P2 is active but not forecast


def test_a_store_that_sent_nothing_is_counted_missing_not_scored_as_zero(arena):
    backtest_yesterday(day=DAY)

    champion = result_of(arena["champion"])
    assert (champion.n_points, champion.n_missing) == (3, 2)
    challenger = result_of(arena["challenger"])
    assert (challenger.n_points, challenger.n_missing) == (3, 1)


def test_per_department_breakdown_and_segment_versions_score_only_their_series(arena):
    backtest_yesterday(day=DAY)

    champion = result_of(arena["champion"])
    assert set(champion.department_metrics) == {"Grocery", "Electronics"}
    assert champion.department_metrics["Electronics"]["mae"] == 1.0
    assert champion.department_metrics["Grocery"]["n_points"] == 2
    assert champion.department_metrics["Grocery"]["n_missing"] == 2
    shadow = result_of(arena["shadow"])
    assert set(shadow.department_metrics) == {"Electronics"}
    assert (shadow.mae, shadow.n_points, shadow.coverage) == (0.5, 1, 1.0)


def test_archived_and_candidate_versions_are_not_scored(arena):
    results = backtest_yesterday(day=DAY)

    assert len(results) == 3
    assert BacktestResult.objects.filter(kind="t_minus_1").count() == 3


def test_running_it_again_replaces_the_days_results(arena):
    backtest_yesterday(day=DAY)
    Sale.objects.filter(date=DAY, product__sku="P1").update(quantity=9)

    backtest_yesterday(day=DAY)

    assert BacktestResult.objects.filter(kind="t_minus_1").count() == 3
    assert result_of(arena["champion"]).mae == pytest.approx((5 + 1 + 1) / 3)
    assert get_backtest_trend(version=arena["champion"], kind="t_minus_1")[0]["mae"] == (
        pytest.approx(7 / 3)
    )


def test_shadow_predictions_get_the_days_actual_unknown_where_the_store_sent_nothing(arena, shop):
    stores, products = shop
    champion, challenger = arena["champion"], arena["challenger"]

    def shadow(store, sku, target=DAY):
        return ShadowPrediction.objects.create(
            key="daily:2025-06-09",
            store=stores[store],
            product=products[sku],
            target_date=target,
            champion_version=champion,
            champion_value=1.0,
            challenger_version=challenger,
            challenger_value=2.0,
        )

    sold, unsold, silent = shadow("S1", "P1"), shadow("S1", "P2"), shadow("S2", "P1")
    tomorrow = shadow("S1", "P1", target=DAY + dt.timedelta(days=1))

    backtest_yesterday(day=DAY)

    actuals = dict(ShadowPrediction.objects.values_list("pk", "actual"))
    assert actuals[sold.pk] == 5.0
    assert actuals[unsold.pk] == 0.0
    assert actuals[silent.pk] is None
    assert actuals[tomorrow.pk] is None


def test_a_day_without_forecasts_stores_nothing(shop):
    ModelVersionFactory(status=Status.CHAMPION)

    assert backtest_yesterday(day=DAY) == []
    assert not BacktestResult.objects.exists()


def test_daily_backtest_job_scores_yesterday_in_the_tenants_time_zone(arena, tenant, monkeypatch):
    # 23:30 UTC on DAY is already the next morning in Auckland: yesterday there is DAY.
    monkeypatch.setattr(tenant, "time_zone", "Pacific/Auckland")
    now = dt.datetime.combine(DAY, dt.time(23, 30), tzinfo=dt.UTC)

    with mock.patch("django.utils.timezone.now", return_value=now):
        summary = daily_backtest()

    assert summary["day"] == DAY.isoformat()
    assert sorted(summary["versions"]) == sorted(v.pk for v in arena.values())
    assert summary["missing"] == 2 + 1 + 0


def test_a_zero_sale_while_out_of_stock_is_censored_not_scored(shop):
    stores, products = shop
    # S1 had no P2 on the shelf that day: its zero says nothing about demand.
    Sale.objects.create(
        store=stores["S1"], product=products["P2"], date=DAY, quantity=0, in_stock=False
    )
    champion = ModelVersionFactory(status=Status.CHAMPION)
    add_forecasts(
        champion,
        shop,
        made_on=DAY,
        values={("S1", "P1"): 4, ("S1", "P2"): 9, ("S1", "P3"): 3},
    )

    (result,) = backtest_yesterday(day=DAY)

    # Scored on P1 (|5 - 4|) and P3 (|2 - 3|) only: P2's forecast of 9 is neither a miss nor
    # a hit.
    assert (result.n_points, result.n_missing) == (2, 0)
    assert result.mae == pytest.approx(1.0)
    assert result.bias == pytest.approx(0.0)


def test_t_minus_1_reports_the_retail_pack_from_the_sales_before_the_day():
    """S1/P1 sold 1..7 two weeks before DAY and 3..9 the week before (the week-on-week naive
    errs 2 every day); S2 reported only from three days before DAY (too short to scale, no
    sale a week before DAY)."""
    s1, s2 = Store.objects.create(code="S1"), Store.objects.create(code="S2")
    p1 = Product.objects.create(sku="P1", department="Grocery")
    history = [1, 2, 3, 4, 5, 6, 7, 3, 4, 5, 6, 7, 8, 9]
    for back, quantity in zip(range(14, 0, -1), history, strict=True):
        Sale.objects.create(
            store=s1, product=p1, date=DAY - dt.timedelta(days=back), quantity=quantity
        )
    for back in (3, 2, 1):
        Sale.objects.create(store=s2, product=p1, date=DAY - dt.timedelta(days=back), quantity=2)
    Sale.objects.create(store=s1, product=p1, date=DAY, quantity=10)
    Sale.objects.create(store=s2, product=p1, date=DAY, quantity=4)
    champion = ModelVersionFactory(status=Status.CHAMPION)
    # One day ahead for each day of the week up to DAY: S1/P1 under-forecast by 1 every day,
    # by 2 on DAY; S2/P1 forecast exactly on DAY.
    for back, value in zip(range(6, -1, -1), [3, 4, 5, 6, 7, 8, 8], strict=True):
        day = DAY - dt.timedelta(days=back)
        Forecast.objects.create(
            model_version=champion,
            store=s1,
            product=p1,
            made_on=day,
            target_date=day,
            value=value,
            lower=value - 1,
            upper=value + 1,
        )
    Forecast.objects.create(
        model_version=champion,
        store=s2,
        product=p1,
        made_on=DAY,
        target_date=DAY,
        value=4,
        lower=3,
        upper=5,
    )

    (result,) = backtest_yesterday(day=DAY)

    # FVA: S1/P1 errs 2 where naive (3, a week before) errs 7; S2/P1 has no naive: 1 - 2/7.
    assert result.fva_pct == pytest.approx(100 * (1 - 2 / 7))
    # Only S1/P1 is scaled: 2 / 2 and sqrt(4 / 4).
    assert result.mase == pytest.approx(1.0)
    assert result.rmsse == pytest.approx(1.0)
    # wQL over both: pinball sums 0.4 (q=0.1), 1.0 (0.5), 1.0 (0.9) over 14 units sold.
    assert result.wql == pytest.approx(2 * (0.4 + 1.0 + 1.0) / 14 / 3)
    # The week's errors of S1/P1 are [1, 1, 1, 1, 1, 1, 2]: 8 / (8/7) = 7, outside +-4;
    # S2/P1 never erred (no MAD) and is left out.
    assert result.tracking_signal == pytest.approx(7.0)
    assert result.department_metrics["Grocery"]["mase"] == pytest.approx(1.0)
