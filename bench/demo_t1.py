"""After `manage.py demo`: the served forecasts' T-1 bias and 80% interval coverage over the
replayed days, overall and per department, from the stored forecasts and sales (each day's
latest forecast made on or before it, as the T-1 backtest scores them; censored days left out).

Two spans: the days before the injected demand shift (D-34 .. D-14), and every replayed day
(D-34 .. D; the last 14 have 30% of the series selling 40% more, which the served champion
cannot know until it is retrained).

Usage: DATABASE_URL=... .venv/bin/python bench/demo_t1.py [--tenant demo]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
if str(REPOSITORY_ROOT) not in sys.path:
    sys.path.insert(0, str(REPOSITORY_ROOT))

QUERY = """
    WITH latest AS (
        SELECT f.store_id, f.product_id, f.target_date, MAX(f.made_on) AS made_on
        FROM forecasting_forecast f
        WHERE f.served AND f.made_on <= f.target_date
          AND f.target_date BETWEEN %(first)s AND %(last)s
        GROUP BY f.store_id, f.product_id, f.target_date
    ),
    reported AS (SELECT DISTINCT store_id, date FROM forecasting_sale
                 WHERE date BETWEEN %(first)s AND %(last)s)
    SELECT p.department, f.target_date, f.value, f.lower, f.upper,
           COALESCE(s.quantity, 0) AS actual,
           (s.quantity = 0 AND NOT s.in_stock) AS censored
    FROM latest l
    JOIN forecasting_forecast f ON f.store_id = l.store_id AND f.product_id = l.product_id
     AND f.target_date = l.target_date AND f.made_on = l.made_on AND f.served
    JOIN forecasting_product p ON p.id = f.product_id
    JOIN reported r ON r.store_id = f.store_id AND r.date = f.target_date
    LEFT JOIN forecasting_sale s ON s.store_id = f.store_id AND s.product_id = f.product_id
     AND s.date = f.target_date
"""


def scores(*, first: dt.date, last: dt.date) -> dict[str, dict[str, float | None]]:
    import numpy as np
    import pandas as pd
    from django.db import connection

    from forecasting.metrics import compute_all

    with connection.cursor() as cursor:
        cursor.execute(QUERY, {"first": first, "last": last})
        frame = pd.DataFrame(
            cursor.fetchall(),
            columns=["department", "day", "value", "lower", "upper", "actual", "censored"],
        )
    frame["censored"] = frame["censored"].fillna(False).astype(bool)
    groups = {"all": frame, **dict(tuple(frame.groupby("department")))}
    return {
        name: compute_all(
            group["actual"].to_numpy(np.float64),
            group["value"].to_numpy(np.float64),
            lower=group["lower"].to_numpy(np.float64),
            upper=group["upper"].to_numpy(np.float64),
            censored=group["censored"].to_numpy(),
        )
        for name, group in groups.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenant", default="demo")
    arguments = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django_tenants.utils import schema_context

    from experiments.demo import DRIFT_DAYS, QUIET_DAYS, SHADOW_DAYS
    from forecasting.selectors import sales_date_range
    from tenants.models import Tenant

    tenant = Tenant.objects.get(slug=arguments.tenant)
    with schema_context(tenant.schema_name):
        last_day = sales_date_range()[1]
        drift_start = last_day - dt.timedelta(days=DRIFT_DAYS - 1)
        shadow_start = drift_start - dt.timedelta(days=QUIET_DAYS + SHADOW_DAYS)
        spans = {
            f"before the shift ({shadow_start} .. {drift_start - dt.timedelta(days=1)})": (
                shadow_start,
                drift_start - dt.timedelta(days=1),
            ),
            f"every replayed day ({shadow_start} .. {last_day})": (shadow_start, last_day),
        }
        for label, (first, last) in spans.items():
            print(f"served forecasts, T-1, {label}:")
            for group, numbers in scores(first=first, last=last).items():
                print(
                    f"  {group:<12} bias {numbers['bias']:+.2f}%  interval coverage "
                    f"{numbers['interval_coverage'] * 100:.1f}%  WAPE {numbers['wape']:.2f}%  "
                    f"({numbers['n_points']:,} points, {numbers['n_censored']:,} censored)"
                )


if __name__ == "__main__":
    main()
