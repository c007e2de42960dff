"""Factories for stores, products and sales, and a fingerprint of the sales table."""

import datetime as dt

import factory
from django.db import connection

from forecasting.models import Product, Sale, Store


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"S{n:03d}")
    name = factory.LazyAttribute(lambda store: f"Store {store.code}")
    region = "North"


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product
        django_get_or_create = ("sku",)

    sku = factory.Sequence(lambda n: f"SKU{n:05d}")
    name = factory.LazyAttribute(lambda product: f"Item {product.sku}")
    department = "Grocery"


class SaleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sale

    store = factory.SubFactory(StoreFactory)
    product = factory.SubFactory(ProductFactory)
    date = dt.date(2025, 3, 1)
    quantity = 3
    on_promotion = False
    price = None


def sales_fingerprint() -> tuple:
    """Row counts and a digest of every sale, store and product: equal only if nothing changed."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM forecasting_sale), "
            "(SELECT md5(coalesce(string_agg(concat_ws(',', store_id, product_id, date, quantity, "
            "on_promotion, price), ';' ORDER BY store_id, product_id, date), '')) "
            "FROM forecasting_sale), "
            "(SELECT md5(coalesce(string_agg(concat_ws(',', id, code, name), ';' ORDER BY id), "
            "'')) FROM forecasting_store), "
            "(SELECT md5(coalesce(string_agg(concat_ws(',', id, sku, name, department), ';' "
            "ORDER BY id), '')) FROM forecasting_product)"
        )
        return cursor.fetchone()
