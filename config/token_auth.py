"""Token authentication of the API, with what a token stands for kept in the tenant's cache.

Its own module: DRF imports the authentication classes while its views module loads, so this
one imports nothing of DRF's views (config/api_auth.py, the login, does).
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from rest_framework.authentication import TokenAuthentication

from config.read_cache import AUTH_GENERATION_KEY, cache_get, cache_set, generation


class CachedTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, with the token's user and that user's permissions kept in
    the tenant's cache under its auth generation (config/read_cache.py): revoking a token,
    deactivating a user or changing a role writes to the tables behind them, which renews that
    generation, so the next request reads them afresh; other writes leave it. What a request may do is still decided
    on every request; only the two queries behind it are saved while nothing changed."""

    def authenticate_credentials(self, key):
        if settings.API_READ_CACHE_SECONDS <= 0:
            return super().authenticate_credentials(key)
        current = generation(getattr(self, "request", None), key=AUTH_GENERATION_KEY)
        if current is None:  # Redis unavailable
            return super().authenticate_credentials(key)
        entry_key = f"api-token:{current}:{hashlib.sha256(key.encode()).hexdigest()}"
        entry = cache_get(entry_key)
        if entry is not None:
            user, permissions = entry
            user._perm_cache = permissions
            return user, None
        user, token = super().authenticate_credentials(key)
        # The permissions the request will be checked against (config/permissions.py).
        permissions = user.get_all_permissions()
        user._perm_cache = permissions
        cache_set(entry_key, (user, permissions))
        return user, token

    def authenticate(self, request):
        self.request = request
        return super().authenticate(request)
