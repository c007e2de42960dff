"""What the API accepts before any view reads it: no NUL character in a JSON body, a query
string or a path (PostgreSQL cannot store one in text or JSONB, so it would end in a 500), and
text fields that are text.

Kept free of view imports at load time: DRF imports the parser class while its own views load.
"""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from django.http import JsonResponse
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from config.text import NON_BLANK_PATTERN, stripped

NUL = "\x00"
API_PREFIX = "/api/"


def _nul_at(value: Any, where: str = "") -> str | None:
    """Where in a parsed JSON value a NUL character is (a key path), or None."""
    if isinstance(value, str):
        return where or "(the body)" if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            if NUL in str(key):
                return path.replace(NUL, "\\u0000")
            found = _nul_at(item, path)
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_at(item, f"{where}[{index}]")
            if found:
                return found
    return None


class NulFreeJSONParser(JSONParser):
    """JSON bodies, refused with a 400 when a key or a text holds a NUL character."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        where = _nul_at(data)
        if where:
            raise ParseError(f"{where}: the NUL character (\\u0000) is not accepted.")
        return data


class RejectNulMiddleware:
    """Answer 400, in the API's error shape, to an API request whose path or query string holds
    a NUL character (`%00`), before a view sends it to the database."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(API_PREFIX):
            query = request.GET
            if NUL in request.path or any(
                NUL in key or any(NUL in value for value in query.getlist(key)) for key in query
            ):
                from config.api_errors import error_body

                body = error_body(
                    code="parse_error",
                    message="The NUL character (%00) is not accepted in a path or a query string.",
                )
                return JsonResponse(body, status=400)
        return self.get_response(request)


class TextField(serializers.CharField):
    """A CharField that takes only text: DRF's would turn 5 or true into "5" / "True", which
    the schema (type: string) does not allow. It agrees with the schema on length and blanks:
    the maximum length holds for the text as sent (as maxLength does; DRF measures after
    trimming), and a required text must hold something besides white space as JSON Schema
    reads it (`config.text`), which the schema says with a `pattern`."""

    default_error_messages = {"not_text": "Give text (a JSON string), not {kind}."}

    def __init__(self, **kwargs):
        kwargs["trim_whitespace"] = False  # trimmed below, with the schema's white space
        super().__init__(**kwargs)
        if not self.allow_blank:
            self.validators.append(
                RegexValidator(NON_BLANK_PATTERN, message=self.error_messages["blank"])
            )

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_text", kind=type(data).__name__)
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        text = stripped(super().to_internal_value(data))
        if not text and not self.allow_blank:
            self.fail("blank")
        return text
