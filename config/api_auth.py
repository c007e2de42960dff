"""Token login of the API: a tenant's user exchanges username and password for a token, with
failed attempts throttled per username and per client address."""

from __future__ import annotations

import hashlib

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from config.api_errors import error_responses

# Scopes of REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] (10 failures a minute each).
USERNAME_SCOPE = "login_failures_per_username"
ADDRESS_SCOPE = "login_failures_per_address"


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`")


class LoginFailureThrottle(SimpleRateThrottle):
    """Failed logins of one username, or from one address, over the scope's period: while the
    period holds the rate's number of failures, every login of that kind is refused (even one
    with the right password), so that passwords cannot be guessed at speed.

    Only failures count (DRF's throttles count every request). The history lives in the
    tenant's cache (keys carry the schema), as usernames do."""

    def __init__(self, *, scope: str, ident: str) -> None:
        self.scope = scope
        self.ident = hashlib.sha256(ident.encode()).hexdigest()  # any text, a safe key
        super().__init__()

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.ident}

    def wait_needed(self) -> float | None:
        """Seconds until the next login may be tried, or None when it may be tried now."""
        self.key = self.get_cache_key(None, None)
        self.now = self.timer()
        self.history = [t for t in self.cache.get(self.key, []) if t > self.now - self.duration]
        return self.wait() if len(self.history) >= self.num_requests else None

    def record_failure(self) -> None:
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, self.duration)


def login_throttles(request) -> list[LoginFailureThrottle]:
    """The throttles of this login: its username's (case-blind) and its client address's
    (DRF's identification: REMOTE_ADDR, or X-Forwarded-For behind NUM_PROXIES proxies)."""
    username = request.data.get("username") if isinstance(request.data, dict) else None
    return [
        LoginFailureThrottle(scope=USERNAME_SCOPE, ident=str(username or "").strip().lower()),
        # A server that sets no REMOTE_ADDR (some WSGI test harnesses) counts as one address.
        LoginFailureThrottle(scope=ADDRESS_SCOPE, ident=BaseThrottle().get_ident(request) or ""),
    ]


class AuthTokenApi(ObtainAuthToken):
    """POST username and password of this tenant's user; answers the user's API token."""

    # The default authenticators run first, so a bad token header answers 401 here too.
    authentication_classes = api_settings.DEFAULT_AUTHENTICATION_CLASSES
    renderer_classes = api_settings.DEFAULT_RENDERER_CLASSES

    @extend_schema(
        operation_id="auth_token",
        summary="Exchange this tenant's username and password for an API token",
        description="After 10 failed logins within a minute for one username, or from one "
        "client address, logins of that username (or from that address) answer 429 with "
        "`Retry-After` until the minute has passed, even with the right password.",
        request=AuthTokenSerializer,
        responses={200: TokenResponseSerializer, **error_responses(400, 415, 429)},
        auth=[],
        tags=["auth"],
    )
    def post(self, request, *args, **kwargs):
        throttles = login_throttles(request)
        waits = [wait for wait in (each.wait_needed() for each in throttles) if wait is not None]
        if waits:
            raise exceptions.Throttled(
                wait=max(waits), detail="Too many failed logins; try again later."
            )
        serializer = self.get_serializer(data=request.data)
        if not serializer.is_valid():
            for throttle in throttles:
                throttle.record_failure()
            raise exceptions.ValidationError(serializer.errors)
        token, _ = Token.objects.get_or_create(user=serializer.validated_data["user"])
        return Response({"token": token.key})
