"""manage.py generate_demo_data: deterministic synthetic sales loaded through the import."""

import datetime as dt
import zoneinfo

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum
from django.utils import timezone

from forecasting.models import Product, Sale, Store
from forecasting.synthetic import generate_sales


def test_demo_data_loads_every_generated_row(capsys):
    call_command(
        "generate_demo_data",
        tenant="acme",
        stores=3,
        products=4,
        days=30,
        seed=7,
        end_date=dt.date(2025, 6, 30),
    )

    expected = generate_sales(stores=3, products=4, days=30, seed=7, end_date=dt.date(2025, 6, 30))
    assert Sale.objects.count() == len(expected) == 360
    assert Sale.objects.aggregate(total=Sum("quantity"))["total"] == expected["quantity"].sum()
    assert Store.objects.count() == 3
    assert set(Product.objects.values_list("department", flat=True)) == {
        "Grocery",
        "Apparel",
        "Electronics",
    }
    out = capsys.readouterr().out
    assert "Rows: 360 (360 inserted, 0 replaced)" in out
    assert "Series: 12 (stores created: 3, products created: 4)" in out
    assert "Dates: 2025-06-01 to 2025-06-30" in out


def test_running_demo_data_again_replaces_instead_of_duplicating():
    options = {"tenant": "acme", "stores": 2, "products": 3, "days": 10, "seed": 1}
    call_command("generate_demo_data", **options, end_date=dt.date(2025, 6, 30))
    first = list(Sale.objects.order_by("store_id", "product_id", "date").values_list("quantity"))

    call_command("generate_demo_data", **options, end_date=dt.date(2025, 6, 30))

    assert (
        list(Sale.objects.order_by("store_id", "product_id", "date").values_list("quantity"))
        == first
    )


def test_drift_options_raise_demand_of_some_series_from_the_drift_date():
    common = {"tenant": "acme", "stores": 2, "products": 10, "days": 60, "seed": 3}
    call_command("generate_demo_data", **common, end_date=dt.date(2025, 6, 30))
    before = Sale.objects.filter(date__gte=dt.date(2025, 6, 1)).aggregate(t=Sum("quantity"))["t"]

    call_command(
        "generate_demo_data",
        **common,
        end_date=dt.date(2025, 6, 30),
        drift_date=dt.date(2025, 6, 1),
        drift_fraction=0.5,
        drift_size=1.0,
    )

    after = Sale.objects.filter(date__gte=dt.date(2025, 6, 1)).aggregate(t=Sum("quantity"))["t"]
    drifted = generate_sales(
        stores=2,
        products=10,
        days=60,
        seed=3,
        end_date=dt.date(2025, 6, 30),
        drift_date=dt.date(2025, 6, 1),
        drift_fraction=0.5,
        drift_size=1.0,
    )
    assert after == drifted.loc[drifted["date"] >= "2025-06-01", "quantity"].sum()
    assert after > before * 1.15


def test_default_end_date_is_yesterday_in_the_tenants_time_zone(tenant):
    call_command("generate_demo_data", tenant="acme", stores=1, products=3, days=5, seed=0)

    today = timezone.localdate(timezone=zoneinfo.ZoneInfo(tenant.time_zone))
    assert Sale.objects.latest("date").date == today - dt.timedelta(days=1)


def test_demo_data_rejects_an_unknown_tenant_and_bad_sizes():
    with pytest.raises(CommandError, match="No tenant"):
        call_command("generate_demo_data", tenant="nosuch")
    with pytest.raises(CommandError, match="positive"):
        call_command("generate_demo_data", tenant="acme", stores=0)


def test_demo_data_can_bring_stockouts_and_the_promotion_calendar(capsys):
    from forecasting.models import PlannedPromotion
    from forecasting.synthetic import promotion_calendar_of

    call_command(
        "generate_demo_data",
        tenant="acme",
        stores=3,
        products=10,
        days=200,
        seed=7,
        end_date=dt.date(2025, 6, 30),
        stockouts=0.5,
        calendar=True,
    )
    expected = generate_sales(
        stores=3, products=10, days=200, seed=7, end_date=dt.date(2025, 6, 30)
    )
    assert PlannedPromotion.objects.count() == len(promotion_calendar_of(expected, seed=7)) > 0
    out_of_stock = Sale.objects.filter(in_stock=False)
    assert out_of_stock.exists() and not out_of_stock.exclude(quantity=0).exists()
    assert "Planned promotions:" in capsys.readouterr().out
