"""The API's reads, cached per tenant until the tenant's data next changes.

Dashboards and scripts read the same few endpoints over and over while the data under them
changes a few times a day (the daily jobs, a promotion, an alert acted on). A read's answer is
kept in the cache under the tenant's *generation*, a token that every write to the tenant's
schema replaces, so a write makes every earlier answer unreachable at once:

- Every statement Django sends (the ORM, `bulk_create`, `QuerySet.update`, raw SQL through its
  cursor) passes `watch_writes`, which replaces the generation after any statement that is not a
  read, and again when the writing transaction commits: a read that ran between the two (and
  saw the data before the commit) was stored under the generation in between.
- COPY, which bypasses Django's cursor, calls `note_write` itself (forecasting/pgcopy.py).
- The tenant's policy lives in the public schema: a save of its row calls `note_write` for the
  tenant (`tenants.apps`).

What a token stands for (its user and the user's permissions, config/token_auth.py) is kept under
a second generation, renewed only by a write that names the tables behind it (tokens, users,
groups, permissions): the daily jobs' writes make every answer afresh, not every sign-in.

An answer also names the day (reads such as "the last 7 days" move at midnight) and lives
`READ_CACHE_SECONDS` at most, the bound for anything else that moves with the clock. The key
names the user and the negotiated media type, and the cache's key function
(`django_tenants.cache.make_key`) puts the schema first, so no tenant or user reads another's.
Authentication and permissions are checked on every request before the cache is read.
A view's `get` opts in with `@cached_read`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import re
import secrets
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_context
from redis.exceptions import RedisError
from rest_framework.response import Response

logger = logging.getLogger(__name__)

GENERATION_KEY = "api-read-generation"
AUTH_GENERATION_KEY = "api-auth-generation"

# Statements that change nothing. Anything else (INSERT, UPDATE, DELETE, TRUNCATE, DDL, and a
# WITH that writes) counts as a write. The session table changes at each sign-in and is read by
# no API answer.
_READ_ONLY = re.compile(
    r"\s*(SELECT|SET|SHOW|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|DECLARE|FETCH|CLOSE|EXPLAIN"
    r"|ANALYZE|LISTEN|UNLISTEN|NOTIFY)\b",
    re.IGNORECASE,
)
_WRITING_WITH = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE)\b", re.IGNORECASE)
_SESSION_TABLE = re.compile(r'^\s*(INSERT INTO|UPDATE|DELETE FROM)\s+"django_session"', re.I)
_WITH = re.compile(r"\s*WITH\b", re.IGNORECASE)
# The tables a token's user and permissions are read from (Django quotes its table names; raw SQL
# may not).
_AUTH_TABLES = re.compile(
    r"\b(authtoken_token|auth_user|auth_user_groups|auth_user_user_permissions|auth_group"
    r"|auth_group_permissions|auth_permission|django_content_type)\b",
    re.IGNORECASE,
)


def is_write(sql: str) -> bool:
    """Whether a statement may change data (what a cached answer could have shown)."""
    if _SESSION_TABLE.match(sql):
        return False
    if _READ_ONLY.match(sql):
        return False
    if _WITH.match(sql):
        return bool(_WRITING_WITH.search(sql)) and " FOR UPDATE" not in sql.upper()
    return True


def renew_generation(schema_name: str, *, auth: bool = True) -> None:
    """Make every cached answer of the tenant unreachable, and what its tokens stand for too
    unless `auth` is False. With Redis unavailable the write goes on (nothing is read from the
    cache then either); answers cached before may be served for up to API_READ_CACHE_SECONDS
    once it is back."""
    if schema_name == get_public_schema_name():
        return
    keys = [GENERATION_KEY, AUTH_GENERATION_KEY] if auth else [GENERATION_KEY]
    try:
        if connection.schema_name == schema_name:
            # Entering the schema it is in would have the next statement set search_path again.
            cache.set_many({key: secrets.token_hex(8) for key in keys}, timeout=None)
            return
        with schema_context(schema_name):
            cache.set_many({key: secrets.token_hex(8) for key in keys}, timeout=None)
    except RedisError as error:
        logger.warning("Cached API reads of %s not renewed: %r", schema_name, error)


def note_write(schema_name: str | None = None, *, auth: bool = True) -> None:
    """The current statement (or COPY) wrote the data of tenant `schema_name` (default: the
    connection's schema), and its users, tokens or permissions unless `auth` is False: renew
    its generations now, and once more when the transaction commits."""
    schema_name = schema_name or connection.schema_name
    if schema_name == get_public_schema_name():
        return
    renew_generation(schema_name, auth=auth)
    if not connection.in_atomic_block:
        return
    for _, callback, *_rest in connection.run_on_commit:
        if getattr(callback, "renews_schema", None) == schema_name:
            callback.renews_auth |= auth
            return

    def renew_at_commit() -> None:
        renew_generation(schema_name, auth=renew_at_commit.renews_auth)

    # Once per transaction and schema (a savepoint rolled back takes it along).
    renew_at_commit.renews_schema = schema_name
    renew_at_commit.renews_auth = auth
    transaction.on_commit(renew_at_commit)


def writes_auth(sql: str) -> bool:
    """Whether a write may change what a token stands for (its user, the user's permissions)."""
    return bool(_AUTH_TABLES.search(sql))


def watch_writes(execute, sql, params, many, context):
    """An execute wrapper (installed on every connection, `tenants.apps`)."""
    result = execute(sql, params, many, context)
    if is_write(sql):
        note_write(auth=writes_auth(sql))
    return result


def install_write_watch(sender, connection, **kwargs) -> None:
    """On each new database connection: watch its statements."""
    if watch_writes not in connection.execute_wrappers:
        connection.execute_wrappers.append(watch_writes)


def generation(request=None, *, key: str = GENERATION_KEY) -> str | None:
    """The tenant's generation of answers (`key` GENERATION_KEY) or of what its tokens stand
    for (AUTH_GENERATION_KEY); both are read once per request, in one round trip (the answer's
    key and the token's entry name the ones taken when the request was authenticated). None
    while Redis is unavailable: nothing is cached or read from the cache then."""
    http_request = getattr(request, "_request", request)
    known = getattr(http_request, "read_cache_generations", None)
    if known is not None and key in known:
        return known[key]
    keys = (GENERATION_KEY, AUTH_GENERATION_KEY)
    try:
        current = cache.get_many(keys)
        for missing in (name for name in keys if name not in current):
            cache.add(missing, secrets.token_hex(8), timeout=None)
            current[missing] = cache.get(missing)
    except RedisError as error:
        logger.warning("API read cache unavailable: %r", error)
        return None
    if http_request is not None:
        http_request.read_cache_generations = current
    return current[key]


def read_key(request) -> str | None:
    """The cache key of a GET request's answer, or None when it is not to be cached. Taken
    before the read runs: an answer computed while a write lands is stored under the
    generation it started from, which that write has already replaced."""
    if request.method != "GET" or settings.API_READ_CACHE_SECONDS <= 0:
        return None
    user = request.user
    if not (user and user.is_authenticated):
        return None
    current = generation(request)
    if current is None:
        return None
    described = "\n".join(
        (
            request.get_full_path(),
            str(user.pk),
            request.accepted_media_type or "",
            timezone.localdate().isoformat(),
        )
    )
    return f"api-read:{current}:{hashlib.sha1(described.encode()).hexdigest()}"


def cached_read(get):
    """For a DRF view's `get`: its successful answers come from the cache while the tenant's
    data is unchanged. Authentication, permissions and content negotiation have run by then."""

    @functools.wraps(get)
    def read(view, request, *args, **kwargs):
        key = read_key(request)
        if key is not None:
            cached: Any = cache_get(key)
            if cached is not None:
                return Response(cached)
        response = get(view, request, *args, **kwargs)
        if key is not None and response.status_code == 200:
            # A serializer's ReturnDict and ReturnList pickle as the plain dict and list.
            cache_set(key, response.data)
        return response

    return read


def cache_get(key: str) -> Any:
    """The cached value, or None (also while Redis is unavailable)."""
    try:
        return cache.get(key)
    except RedisError:
        return None


def cache_set(key: str, value: Any) -> None:
    """Cache `value` for API_READ_CACHE_SECONDS (nothing while Redis is unavailable)."""
    with contextlib.suppress(RedisError):
        cache.set(key, value, settings.API_READ_CACHE_SECONDS)
