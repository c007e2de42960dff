"""Token login of the API: a tenant's user exchanges username and password for a token."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.settings import api_settings

from config.api_errors import error_responses


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`")


class AuthTokenApi(ObtainAuthToken):
    """POST username and password of this tenant's user; answers the user's API token."""

    # The default authenticators run first, so a bad token header answers 401 here too.
    authentication_classes = api_settings.DEFAULT_AUTHENTICATION_CLASSES
    renderer_classes = api_settings.DEFAULT_RENDERER_CLASSES

    @extend_schema(
        operation_id="auth_token",
        summary="Exchange this tenant's username and password for an API token",
        request=AuthTokenSerializer,
        responses={200: TokenResponseSerializer, **error_responses(400, 415)},
        auth=[],
        tags=["auth"],
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)
