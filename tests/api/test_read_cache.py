"""The API's reads are cached per tenant until the tenant's data next changes (config/read_cache.py):
a repeated read costs only the request's tenant routing, and any write (a save, a queryset update,
a bulk insert, raw SQL, COPY, the tenant's policy) is shown by the next read."""

import pandas as pd
import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context
from redis.exceptions import ConnectionError as RedisConnectionError
from rest_framework.authtoken.models import Token

from alerts.models import MLAlert
from config import read_cache
from config.read_cache import AUTH_GENERATION_KEY, GENERATION_KEY, is_write, writes_auth
from forecasting.pgcopy import copy_in_frame
from tests.api.clients import OTHER_HOST, client_for
from tests.api.factories import UserFactory, make_alert


def _titles(user, host=None):
    client = client_for(user) if host is None else client_for(user, host=host)
    response = client.get("/api/v1/ml-alerts")
    assert response.status_code == 200, response.content
    return [row["title"] for row in response.json()["results"]]


def test_a_repeated_read_takes_only_the_requests_own_queries(viewer):
    make_alert(title="Drift in Grocery")
    client = client_for(viewer)
    first = client.get("/api/v1/ml-alerts").json()

    with CaptureQueriesContext(connection) as queries:
        again = client.get("/api/v1/ml-alerts").json()

    assert again == first
    # The search path (public, then the tenant) and the tenant's domain.
    assert len(queries) <= 3, [query["sql"] for query in queries]


def test_a_saved_change_is_shown_by_the_next_read(viewer):
    alert = make_alert(title="Drift in Grocery")
    assert _titles(viewer) == ["Drift in Grocery"]

    alert.title = "Drift in Grocery (re-opened)"
    alert.save(update_fields=["title"])

    assert _titles(viewer) == ["Drift in Grocery (re-opened)"]


def test_a_queryset_update_and_a_bulk_insert_are_shown_by_the_next_read(viewer):
    """Neither sends a model signal: the cache learns of them from the statements themselves."""
    make_alert(title="Drift in Grocery")
    assert _titles(viewer) == ["Drift in Grocery"]

    MLAlert.objects.update(title="Drift in Fresh")
    assert _titles(viewer) == ["Drift in Fresh"]

    template = MLAlert.objects.get()
    template.pk = None
    template.title = "Drift in Frozen"
    template.dedup_key = "drift_detected:frozen"
    MLAlert.objects.bulk_create([template])
    assert sorted(_titles(viewer)) == ["Drift in Fresh", "Drift in Frozen"]


def test_raw_sql_is_shown_by_the_next_read(viewer):
    make_alert(title="Drift in Grocery")
    assert _titles(viewer) == ["Drift in Grocery"]

    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {MLAlert._meta.db_table} SET title = %s", ["Drift in Bakery"])

    assert _titles(viewer) == ["Drift in Bakery"]


def test_copy_renews_the_tenants_generation():
    """COPY goes past Django's cursor, so the bulk writers say so themselves."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE copied (n integer)")
    before = cache.get(GENERATION_KEY)

    copy_in_frame(table="copied", columns=["n"], frame=pd.DataFrame({"n": [1, 2]}))

    assert cache.get(GENERATION_KEY) != before


def test_a_change_of_the_tenants_policy_is_shown_by_the_next_read(viewer, tenant):
    response = client_for(viewer).get("/api/v1/models/health")
    assert response.status_code == 200
    generation = cache.get(GENERATION_KEY)

    threshold = tenant.drift_threshold_pct
    try:
        tenant.drift_threshold_pct = threshold + 5
        tenant.save(update_fields=["drift_threshold_pct"])
        assert cache.get(GENERATION_KEY) != generation
    finally:
        # The tenant's object outlives the test (its row is rolled back).
        tenant.drift_threshold_pct = threshold


def test_a_read_changes_nothing_it_would_renew(viewer):
    make_alert(title="Drift in Grocery")
    _titles(viewer)
    generation = cache.get(GENERATION_KEY)

    _titles(viewer)
    client_for(viewer).get("/api/v1/ml-alerts/stats")

    assert cache.get(GENERATION_KEY) == generation


def test_each_tenant_and_each_user_read_their_own_answers(viewer, manager, other_tenant):
    make_alert(title="Drift in Grocery")
    assert _titles(viewer) == ["Drift in Grocery"]

    with tenant_context(other_tenant):
        other_viewer = UserFactory(username="olga", role="viewer")
        make_alert(title="Drift in Garden")
        assert _titles(other_viewer, host=OTHER_HOST) == ["Drift in Garden"]

    assert _titles(viewer) == ["Drift in Grocery"]
    assert _titles(manager) == ["Drift in Grocery"]


def test_permissions_are_checked_before_the_cache_is_read(viewer, no_role):
    make_alert(title="Drift in Grocery")
    assert _titles(viewer) == ["Drift in Grocery"]

    assert client_for(no_role).get("/api/v1/ml-alerts").status_code == 403
    assert client_for().get("/api/v1/ml-alerts").status_code == 401


def test_errors_are_not_cached(viewer):
    alert = make_alert(title="Drift in Grocery")
    missing = alert.pk + 1
    assert client_for(viewer).get(f"/api/v1/ml-alerts/{missing}").status_code == 404

    assert make_alert(title="Drift in Fresh", dedup_key="drift_detected:fresh").pk == missing

    assert client_for(viewer).get(f"/api/v1/ml-alerts/{missing}").status_code == 200


@pytest.mark.parametrize(
    ("sql", "writes"),
    [
        ("SELECT 1", False),
        ('  select "alerts_mlalert"."id" FROM "alerts_mlalert" FOR UPDATE', False),
        ('SET search_path = "acme","public"', False),
        ("SAVEPOINT s1", False),
        ('UPDATE "django_session" SET "expire_date" = now()', False),
        ('INSERT INTO "alerts_mlalert" ("title") VALUES (%s)', True),
        ('UPDATE "alerts_mlalert" SET "title" = %s', True),
        ('DELETE FROM "alerts_mlalert" WHERE "id" = %s', True),
        ("TRUNCATE alerts_mlalert", True),
        ("CREATE TEMPORARY TABLE t (n integer)", True),
        ("WITH gone AS (DELETE FROM t RETURNING n) SELECT count(*) FROM gone", True),
        ("WITH recent AS (SELECT n FROM t) SELECT n FROM recent", False),
    ],
)
def test_which_statements_count_as_writes(sql, writes):
    assert is_write(sql) is writes


def test_a_revoked_token_is_refused_at_the_next_request(viewer):
    client = client_for(viewer)
    assert client.get("/api/v1/ml-alerts").status_code == 200

    Token.objects.filter(user=viewer).delete()

    assert client.get("/api/v1/ml-alerts").status_code == 401


def test_a_deactivated_user_is_refused_at_the_next_request(viewer):
    client = client_for(viewer)
    assert client.get("/api/v1/ml-alerts").status_code == 200

    get_user_model().objects.filter(pk=viewer.pk).update(is_active=False)

    assert client.get("/api/v1/ml-alerts").status_code == 401


def test_a_role_taken_away_is_refused_at_the_next_request(viewer):
    client = client_for(viewer)
    assert client.get("/api/v1/ml-alerts").status_code == 200

    viewer.groups.clear()

    assert client.get("/api/v1/ml-alerts").status_code == 403


def test_a_repeated_request_reads_neither_token_nor_permissions(viewer):
    client = client_for(viewer)
    client.get("/api/v1/ml-alerts")

    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/v1/ml-alerts").status_code == 200

    statements = " ".join(query["sql"] for query in queries)
    assert "authtoken_token" not in statements
    assert "auth_permission" not in statements


class _RedisDown:
    """A cache whose every call fails as it does while Redis is unreachable."""

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise RedisConnectionError("Connection refused")

        return fail


def test_with_redis_unavailable_writes_go_on_and_reads_are_answered_afresh(viewer, monkeypatch):
    alert = make_alert(title="Drift in Grocery")
    client = client_for(viewer)
    assert _titles(viewer) == ["Drift in Grocery"]

    monkeypatch.setattr(read_cache, "cache", _RedisDown())
    alert.title = "Drift in Fresh"
    alert.save(update_fields=["title"])

    response = client.get("/api/v1/ml-alerts")
    assert response.status_code == 200
    assert [row["title"] for row in response.json()["results"]] == ["Drift in Fresh"]


def test_a_write_of_data_is_shown_by_the_next_read_without_reading_the_token_again(viewer):
    alert = make_alert(title="Drift in Grocery")
    client = client_for(viewer)
    assert _titles(viewer) == ["Drift in Grocery"]

    alert.title = "Drift in Fresh"
    alert.save(update_fields=["title"])
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/ml-alerts")

    assert [row["title"] for row in response.json()["results"]] == ["Drift in Fresh"]
    statements = " ".join(query["sql"] for query in queries)
    assert "alerts_mlalert" in statements
    assert "authtoken_token" not in statements
    assert "auth_permission" not in statements


def test_a_transaction_that_writes_data_then_a_role_renews_both_generations_at_commit(
    viewer, no_role
):
    alert = make_alert(title="Drift in Grocery")
    # The test's own transaction has a renewal waiting from creating the users; this one's
    # transaction starts with none, as a request's or a job's does.
    waiting, connection.run_on_commit = connection.run_on_commit, []
    try:
        with transaction.atomic():
            MLAlert.objects.filter(pk=alert.pk).update(title="Drift in Fresh")
            no_role.groups.set(viewer.groups.all())
        at_commit = [
            callback
            for _, callback, _ in connection.run_on_commit
            if getattr(callback, "renews_schema", None) == connection.schema_name
        ]
    finally:
        connection.run_on_commit = waiting
    before = cache.get_many([GENERATION_KEY, AUTH_GENERATION_KEY])

    assert len(at_commit) == 1
    at_commit[0]()  # what the commit runs

    after = cache.get_many([GENERATION_KEY, AUTH_GENERATION_KEY])
    assert after[GENERATION_KEY] != before[GENERATION_KEY]
    assert after[AUTH_GENERATION_KEY] != before[AUTH_GENERATION_KEY]


@pytest.mark.parametrize(
    ("sql", "auth"),
    [
        ('INSERT INTO "alerts_mlalert" ("title") VALUES (%s)', False),
        ('DELETE FROM "authtoken_token" WHERE "key" = %s', True),
        ('UPDATE "auth_user" SET "is_active" = false', True),
        ('INSERT INTO "auth_user_groups" ("user_id", "group_id") VALUES (%s, %s)', True),
        ("delete from auth_group_permissions", True),
    ],
)
def test_which_writes_change_what_a_token_stands_for(sql, auth):
    assert writes_auth(sql) is auth
