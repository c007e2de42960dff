"""The API's one error shape, `{"error": {"code", "message", "details"}}`, and the handler that makes it."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django_fsm import ConcurrentTransition, TransitionNotAllowed
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(help_text="A stable, machine-readable error code")
    message = serializers.CharField(help_text="What went wrong, for a person")
    details = serializers.DictField(
        help_text="Structured detail: field errors (400), allowed transitions (409), rows at "
        "fault (sales import), ...",
    )


class ErrorSerializer(serializers.Serializer):
    """The body of every error response."""

    error = ErrorBodySerializer()


class Conflict(exceptions.APIException):
    """The request is valid but the resource's state forbids it now (an illegal transition)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The resource's state does not allow this."
    default_code = "illegal_transition"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.details = details or {}


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.details = details or {}


class BadRequest(exceptions.APIException):
    """A request the service refused as invalid, with structured details."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(self, message: str, *, code: str = "invalid", details: dict | None = None):
        super().__init__(message, code)
        self.code = code
        self.details = details or {}


from config.transitions import is_system_move  # noqa: E402


def available_transitions(obj: Any) -> list[str]:
    """Names of the FSM transitions a person may make on `obj` from its current state(s) (moves
    only the system makes are left out)."""
    names: set[str] = set()
    for attribute in dir(type(obj)):
        if attribute.startswith("get_available_") and attribute.endswith("_transitions"):
            if attribute.startswith("get_available_user_"):
                continue
            names.update(t.name for t in getattr(obj, attribute)() if not is_system_move(t))
    return sorted(names)


def transition_conflict(
    error: TransitionNotAllowed, obj: Any = None, *, allowed: list[str] | None = None
) -> Conflict:
    """A 409 for an illegal move of `obj` (or of the object the error names), listing the moves
    allowed from its current status (`allowed` when the caller knows them better)."""
    target = obj if obj is not None else getattr(error, "object", None)
    details: dict[str, Any] = {}
    if target is not None:
        target_status = getattr(target, "status", None)
        if target_status is not None:
            details["status"] = str(target_status)
    if allowed is not None:
        details["allowed_transitions"] = list(allowed)
    elif target is not None:
        details["allowed_transitions"] = available_transitions(target)
    else:
        details["allowed_transitions"] = []
    return Conflict(str(error) or "This transition is not allowed now.", details=details)


def _flatten_message(detail: Any) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            text = _flatten_message(value)
            return text if key == "non_field_errors" else f"{key}: {text}"
        return "Invalid input."
    if isinstance(detail, list):
        return _flatten_message(detail[0]) if detail else "Invalid input."
    return str(detail)


def _translate(exc: Exception) -> Exception:
    """Exceptions of Django, django-fsm and the services as the API exceptions they mean."""
    if isinstance(exc, TransitionNotAllowed):
        return transition_conflict(exc)
    if isinstance(exc, ConcurrentTransition):
        return Conflict(
            "Someone changed this object at the same moment; reload it and try again.",
            details={"allowed_transitions": []},
        )
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, (Http404, ObjectDoesNotExist)):
        return exceptions.NotFound(str(exc) or None)
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return exceptions.ValidationError(exc.message_dict)
        return exceptions.ValidationError({"non_field_errors": exc.messages})
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge(str(exc))
    return exc


def _code(exc: exceptions.APIException) -> str:
    if isinstance(exc, exceptions.ValidationError):
        return "validation_error"
    return getattr(exc, "code", None) or exc.default_code


def _details(exc: exceptions.APIException) -> dict[str, Any]:
    explicit = getattr(exc, "details", None)
    if explicit is not None:
        return explicit
    if isinstance(exc, exceptions.ValidationError):
        if isinstance(exc.detail, dict):
            return {"fields": exc.detail}
        return {"fields": {"non_field_errors": exc.detail}}
    return {}


def error_body(*, code: str, message: str, details: dict[str, Any] | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's handler (status, WWW-Authenticate, Retry-After) with every body in the error shape."""
    exc = _translate(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    message = _flatten_message(exc.detail) if isinstance(exc, exceptions.APIException) else ""
    response.data = error_body(code=_code(exc), message=message, details=_details(exc))
    set_rollback()
    return response


_DESCRIPTIONS = {
    400: "Invalid input: `details.fields` maps each field to its errors.",
    401: "No credentials, or bad ones (`WWW-Authenticate: Token`).",
    403: "Authenticated, but the user's role does not allow this.",
    404: "No such object in this tenant (for a list: no such page).",
    409: "Illegal transition: `details.status` and `details.allowed_transitions` say what is "
    "allowed now.",
    413: "The upload is larger than the tenant's limit.",
    415: "The body is not JSON (or, for uploads, not multipart/form-data).",
    429: "Too many failed attempts: `Retry-After` says how many seconds to wait.",
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """OpenAPI responses in the error shape for these status codes (401 and 403 always)."""
    wanted = sorted({401, 403, *codes})
    return {
        code: OpenApiResponse(response=ErrorSerializer, description=_DESCRIPTIONS[code])
        for code in wanted
    }


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
@authentication_classes([])
@permission_classes([])
def api_not_found(request, *args, **kwargs):
    """Any path under /api/v1/ that names no endpoint."""
    raise exceptions.NotFound(f"No API endpoint at {request.path}.")
