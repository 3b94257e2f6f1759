"""Every API error as JSON: {"error": {"code", "message", "fields"?}} with the right status."""

import logging

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.db import OperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from conversations.providers.characters import storable_text

logger = logging.getLogger(__name__)


def json_exception_handler(exc: Exception, context: dict) -> Response | None:
    # ObjectDoesNotExist: a row deleted by another request while this one ran (a Stop's reply
    # read back once stored, a rename saved) is as gone as one never found.
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        exc = exceptions.NotFound("Not found.")
    if isinstance(exc, RequestDataTooBig):  # Django's body limit, met while DRF parses
        message = f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
        return api_error("too_large", message, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, OperationalError):
        # SQLite busy past its timeout, or no pooled connection free: the request wrote
        # nothing (its transaction rolled back), so a retry is safe.
        logger.warning("Database unavailable: %s", exc)
        response = api_error(
            "database_busy",
            "The database is busy right now; nothing was saved. Try again in a moment.",
            status.HTTP_503_SERVICE_UNAVAILABLE,
        )
        response["Retry-After"] = "1"
        return response
    response = exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django log it and answer 500
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"error": validation_error(exc.detail)}
    else:
        detail = getattr(exc, "detail", str(exc))
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        response.data = {"error": {"code": code, "message": storable_text(str(detail))}}
    return response


def validation_error(detail: object) -> dict:
    """One readable sentence for people, and the per-field details for programs."""
    detail = encodable(detail)
    if isinstance(detail, dict):
        return {"code": "invalid", "message": readable(detail), "fields": detail}
    return {"code": "invalid", "message": readable(detail)}


def encodable(detail: object) -> object:
    """Error details echo what they refuse (a role, a part's type, a key): half a character
    in it, which JSON's escapes can carry, would make the answer itself fail to encode (500)."""
    if isinstance(detail, str):
        return storable_text(detail)
    if isinstance(detail, dict):
        return {encodable(name): encodable(inner) for name, inner in detail.items()}
    if isinstance(detail, list):
        return [encodable(inner) for inner in detail]
    return detail


def readable(errors: object) -> str:
    """DRF's error details as one line, nested ones too: "messages: item 2: role: …"."""
    if isinstance(errors, dict):  # by field name, or by index in a list (messages)
        parts = [
            readable(inner)
            if name == "non_field_errors"
            else f"{'item ' if isinstance(name, int) else ''}{name}: {readable(inner)}"
            for name, inner in errors.items()
        ]
        return " ".join(parts)
    if isinstance(errors, list):
        return " ".join(readable(e) for e in errors)
    return str(errors)


def api_error(code: str, message: str, http_status: int = status.HTTP_400_BAD_REQUEST) -> Response:
    return Response({"error": {"code": code, "message": message}}, status=http_status)
