"""API clients on a tenant's host with a user's token, and the check of the one error shape."""

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

HOST = "acme.testserver"
OTHER_HOST = "globex.testserver"


def client_for(user=None, *, host: str = HOST) -> APIClient:
    """A client on the tenant's host, sending the user's token (no user: anonymous)."""
    client = APIClient(HTTP_HOST=host)
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The response has this status and the one error shape; returns its `error` object."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]
