"""/v1's errors in OpenAI's shape, {"error": {"message", "type", "param", "code"}}, which its
SDKs read into an error's .type, .param and .code. chatsite's per-field details ride along
under "fields", as on the rest of the API."""

from django.http import HttpResponseBase, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings

from conversations.api.errors import json_exception_handler
from conversations.producers import CONVERSATION_DELETED

MODEL_NOT_FOUND = "model_not_found"


def openai_error(error: dict, http_status: int) -> dict:
    """chatsite's {"code", "message", "fields"?} as OpenAI words it."""
    fields = error.get("fields")
    # The field at fault, as OpenAI names one: the first, when there are several; none for
    # the body as a whole (not a JSON object, or fields wrong together).
    named = [str(name) for name in fields or () if name != api_settings.NON_FIELD_ERRORS_KEY]
    return {
        "message": error["message"],
        "type": error_type(http_status, error["code"]),
        "param": named[0] if named else None,
        "code": error["code"],
        **({"fields": fields} if fields else {}),
    }


def error_type(http_status: int, code: str) -> str:
    if http_status == status.HTTP_429_TOO_MANY_REQUESTS:
        return "requests" if code == "rate_limited" else "insufficient_quota"
    if http_status >= 500:
        return "server_error"
    return "invalid_request_error"  # OpenAI's for every 4xx, a bad key's 401 too


def openai_exception_handler(exc: Exception, context: dict) -> Response | None:
    response = json_exception_handler(exc, context)
    if response is None or "error" not in (response.data or {}):
        return response
    error = response.data["error"]
    if unknown_model(exc):  # OpenAI's answer to a model it does not have: 404
        response.status_code = status.HTTP_404_NOT_FOUND
        error["code"] = MODEL_NOT_FOUND
    response.data = {"error": openai_error(error, response.status_code)}
    return told_whether_to_retry(response, error["code"])  # chatsite's own daily budget


def unknown_model(exc: Exception) -> bool:
    if not isinstance(exc, exceptions.ValidationError) or not isinstance(exc.detail, dict):
        return False
    return exc.get_codes() == {"model": [MODEL_NOT_FOUND]}


DELETED = "The conversation was deleted meanwhile."
STOPPED = (
    "The reply was stopped in chatsite (its owner's Stop) before it was complete; the text up"
    " to then is kept in the conversation."
)

# The status an ended reply's code answers without `stream` (a streamed error's type says
# the same); any other provider failure is a 502. A provider refusing the request (a prompt
# past its context window, say) is the client's 400, as from OpenAI itself.
ERROR_STATUS = {
    "not_found": 404,
    "key_revoked": 401,
    "session_ended": 401,
    "stopped": 409,
    "too_long": 409,  # CHATSITE_REPLY_MAX_SECONDS: stopped, as by a Stop
    "bad_request": 400,
    "content_filter": 400,
    "rate_limited": 429,  # the provider's, still so after chatsite's own retries
    "quota_exhausted": 429,
}
# Answers OpenAI's SDKs send again by default (409, 429, 5xx) that would fail the same way, or
# undo a Stop with a new reply: x-should-retry, which they read first, says not to.
NOT_TO_RETRY = {
    "stopped", "too_long", "quota_exhausted", "token_budget_exceeded",
    "auth_error", "tls_error", "provider_not_found",  # this site's configuration
}  # fmt: skip


def stopped_error(error_code: str, error: str) -> dict:
    """A reply stopped before its end, not by its client: an error, as OpenAI has no whole
    completion to give for text cut short (its finish reasons do not say "stopped")."""
    if error_code == CONVERSATION_DELETED:
        return {"code": "not_found", "message": DELETED}
    return {"code": error_code or "stopped", "message": error or STOPPED}


def streamed_error(error: dict) -> dict:
    """An error event's {"code", "message"} (the reply failed, was deleted, or its key or
    session ended) as OpenAI streams one: a provider's failure is a server error."""
    return openai_error(error, ERROR_STATUS.get(error["code"], 500))


def error_response(http_status: int, code: str, message: str) -> JsonResponse:
    error = openai_error({"code": code, "message": message}, http_status)
    return told_whether_to_retry(JsonResponse({"error": error}, status=http_status), code)


def told_whether_to_retry[R: HttpResponseBase](response: R, code: str) -> R:
    """`response`, with x-should-retry: false for an answer that would only come again."""
    if code in NOT_TO_RETRY:
        response["x-should-retry"] = "false"
    return response
