"""Writes of series demand classes: the class of every series of a panel, as of a day."""

from __future__ import annotations

import datetime as dt

import numpy as np
from django.db import transaction

from forecasting.demand_classes import DemandClasses, classify
from forecasting.models import Product, SeriesDemandClass, Store
from forecasting.panel import Panel


@transaction.atomic
def record_demand_classes(*, panel: Panel, as_of: dt.date) -> DemandClasses:
    """Classify every series of `panel` (its days before `as_of`) and store each class,
    replacing the series' earlier one; returns the classes, in panel row order."""
    found = classify(panel.until(as_of).quantity)
    store_ids = dict(Store.objects.values_list("code", "id"))
    product_ids = dict(Product.objects.values_list("sku", "id"))
    rows = [
        SeriesDemandClass(
            store_id=store_ids[str(store)],
            product_id=product_ids[str(product)],
            demand_class=str(demand_class),
            adi=float(adi) if np.isfinite(adi) else None,
            cv2=float(cv2),
            as_of=as_of,
        )
        for store, product, demand_class, adi, cv2 in zip(
            panel.stores, panel.products, found.classes, found.adi, found.cv2, strict=True
        )
    ]
    SeriesDemandClass.objects.bulk_create(
        rows,
        batch_size=5000,
        update_conflicts=True,
        unique_fields=["store", "product"],
        update_fields=["demand_class", "adi", "cv2", "as_of"],
    )
    return found
