"""The translation of a provider's HTTP failures into ProviderError: failure statuses and
their bodies, transport errors (httpx's, or aiohttp's below it), and TLS certificate problems.
Every message is redacted of the provider's secrets."""

import contextlib
import json
import ssl
from collections.abc import Iterator

import aiohttp
import httpx
from django.utils.text import Truncator

from conversations.providers.base import ProviderError

# A provider's own words in an error are cut to this many characters, after redaction: cut
# first, a key across the cut would be left half shown.
DETAIL_CHARS = 300


def redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


@contextlib.contextmanager
def translated_errors(label: str, secrets: tuple[str, ...]) -> Iterator[None]:
    """Turn httpx's transport errors and any ProviderError text into safe ProviderErrors."""
    try:
        yield
    except ProviderError as error:
        # Redacted whole, then cut: the message is its label's sentence and the detail.
        redacted = redact(error.message, secrets)
        error.message = Truncator(redacted).chars(DETAIL_CHARS + 100, truncate="…")
        error.args = (error.message,)
        raise
    except (httpx.TransportError, aiohttp.ClientError) as error:
        if (problem := certificate_problem(error)) is not None:
            # Not retried: another attempt meets the same certificate.
            message = f"Could not verify the TLS certificate of {label}: {problem}."
            raise ProviderError(redact(message, secrets), code="tls_error") from None
        failure = transport_failure(failure_kind(error), label)
        if failure is None:
            raise  # not the provider's doing (a URL httpx cannot use): chatsite's own error
        raise failure from None


def certificate_problem(error: BaseException | None) -> str | None:
    """Why the provider's TLS certificate was refused ("certificate has expired"), if that is
    what failed: an SSL error somewhere in the chain of errors httpx or aiohttp raised."""
    for _ in range(8):  # the chains are short; a cycle must not loop forever
        if error is None:
            return None
        if isinstance(error, aiohttp.ClientConnectorCertificateError):  # an SSL error too
            error = error.certificate_error
        elif isinstance(error, ssl.SSLCertVerificationError):
            return (error.verify_message or "not trusted").rstrip(".")
        else:
            error = error.__cause__ or error.__context__
    return None


def transport_failure(kind: type[Exception], label: str) -> ProviderError | None:
    """The ProviderError for a request that failed below HTTP, as httpx names the failure."""
    if issubclass(kind, httpx.TimeoutException):
        connect = issubclass(kind, httpx.ConnectTimeout)
        return ProviderError(
            f"{label} did not answer in time ({'connect' if connect else 'read'} timeout).",
            code="timeout",
            retryable=connect,  # nothing was asked yet
        )
    if issubclass(kind, (httpx.ConnectError, httpx.ProxyError)):
        return ProviderError(f"Could not connect to {label}.", code="connect_error", retryable=True)
    if issubclass(kind, (httpx.NetworkError, httpx.RemoteProtocolError)):
        return ProviderError(  # the request may have reached the model: not asked twice
            f"The connection to {label} was cut off before the reply was complete.",
            code="connection_dropped",
        )
    return None


# aiohttp's errors as httpx names them, subclasses first. httpx-aiohttp 0.2 names some
# wrongly (a refused connection or a provider hanging up becomes ConnectTimeout) and lets
# others through (an answer that is not HTTP), so the aiohttp error itself decides.
AIOHTTP_FAILURES: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (aiohttp.ClientConnectorError, httpx.ConnectError),  # refused, name not found, TLS
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientError, httpx.RemoteProtocolError),  # hung up, reset, cut short, not HTTP
)


def failure_kind(error: Exception) -> type[Exception]:
    aiohttp_error = error if isinstance(error, aiohttp.ClientError) else error.__cause__
    for failure, kind in AIOHTTP_FAILURES:
        if isinstance(aiohttp_error, failure):
            return kind
    return type(error)


async def raise_for_status(response: httpx.Response, label: str) -> None:
    """Read the provider's JSON error body and raise a ProviderError for any non-2xx status."""
    if response.is_success:
        return
    body = await response.aread()
    status, code = response.status_code, error_code(body)
    # Not a rate: asking again later gets the same answer.
    out_of_credit = status == 429 and code in OUT_OF_CREDIT
    if content_refused(code):
        raise ProviderError(
            f"{label}'s content inspection refused this request ({code}): {error_detail(body)}",
            code="content_filter",
            status=status,
        )
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    raise error_for_status(status, label, error_detail(body), retry_after, out_of_credit)


def error_for_status(
    status: int,
    label: str,
    detail: str,
    retry_after: float | None = None,
    out_of_credit: bool = False,
) -> ProviderError:
    """The one mapping of a failure status to its message; in-stream errors name their status
    (Anthropic's billing_error is a 402, as over HTTP)."""
    out_of_credit = out_of_credit or status == 402
    if status in (401, 403):
        message, code = f"{label} rejected the API key (HTTP {status})", "auth_error"
    elif out_of_credit:
        message = f"{label} says the account is out of credit or quota (HTTP {status})"
        code = "quota_exhausted"
    elif status == 429:
        message, code = f"{label} is rate limiting requests (HTTP 429)", "rate_limited"
        if retry_after is not None:
            message += f"; try again in {retry_after:g} s"
    elif status >= 500:
        message, code = f"{label} had a server error (HTTP {status})", "provider_unavailable"
    elif status == 404:  # this site's model id or base URL, not the request's fault
        message, code = f"{label} has no such model or path (HTTP 404)", "provider_not_found"
    else:
        message, code = f"{label} refused the request (HTTP {status})", "bad_request"
    return ProviderError(
        f"{message}: {detail}" if detail else f"{message}.",
        code=code,
        retryable=(status == 429 or status >= 500) and not out_of_credit,
        retry_after=retry_after,
        status=status,
    )


def error_detail(body: bytes) -> str:
    """The human part of a provider's error body, whichever shape it has (whole: it is cut
    once redacted, translated_errors)."""
    error = error_object(body)
    if isinstance(error, dict):
        return str(error.get("message") or error.get("msg") or error.get("code") or "")
    if isinstance(error, str):
        return error
    return body.decode("utf-8", "replace").strip() if error is None else ""


def error_code(body: bytes) -> str:
    """The error body's machine-readable code ("insufficient_quota", Zhipu's "1113"), or ""."""
    error = error_object(body)
    return str(error.get("code") or "") if isinstance(error, dict) else ""


def error_object(body: bytes) -> object:
    """The error a JSON body holds ({"error": ...} or the body itself), or None if it holds no
    JSON. DashScope may send its error as an SSE frame: its last data line is read."""
    text = body.decode("utf-8", "replace")
    if text.lstrip().startswith(("id:", "event:", "data:")):
        data = [line[5:] for line in text.splitlines() if line.startswith("data:")]
        text = data[-1] if data else text
    try:
        payload = json.loads(text)
    except ValueError:
        return None
    return payload.get("error", payload) if isinstance(payload, dict) else ""


# Codes a provider's 429 carries when the account, not the rate, is the limit: OpenAI's
# insufficient_quota, Zhipu's 1113 (the account in arrears).
OUT_OF_CREDIT = {"insufficient_quota", "1113"}


def content_refused(code: str) -> bool:
    """Whether an error code says a request or reply was refused for what it says: DashScope's
    content inspection, DataInspectionFailed natively, data_inspection_failed in its
    OpenAI-compatible mode, and sometimes prefixed (InternalError.Algo.DataInspectionFailed)."""
    return code.replace("_", "").lower().endswith("datainspectionfailed")


def parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from APIs, and backoff covers it
