"""The shared httpx client and the translation of HTTP failures into ProviderError.

One AsyncClient per event loop, reused by every provider: connection reuse matters. Its
requests travel on aiohttp (httpx-aiohttp's transport): every chunk of every reply is read
through it, and aiohttp reads one for about a third less CPU than httpcore, which sets a
timeout and registers and removes the socket's reader for each read, in Python (bench/).
"""

import asyncio
import contextlib
import functools
import json
import ssl
from collections.abc import AsyncIterator, Iterator
from http.cookiejar import CookieJar, DefaultCookiePolicy

import aiohttp
import httpx
import orjson
from django.conf import settings
from django.utils.text import Truncator
from httpx_aiohttp import AiohttpTransport

from conversations.providers.base import ProviderError
from conversations.providers.sse import ServerSentEvent, SSEDecoder

_clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}


def client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    if loop not in _clients:
        _clients[loop] = httpx.AsyncClient(
            timeout=httpx.Timeout(
                connect=settings.PROVIDER_CONNECT_TIMEOUT,
                read=settings.PROVIDER_READ_TIMEOUT,
                write=30.0,
                pool=30.0,
            ),
            # Every user's replies share the client: a cookie a provider sets (an affinity or
            # bot-check cookie) is not kept for the next request, here nor in aiohttp's session.
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            # Given the context, the transport does not load the certificates again.
            transport=AiohttpTransport(client=aiohttp_session, verify=provider_ssl_context()),
        )
    return _clients[loop]


@functools.cache
def provider_ssl_context() -> ssl.SSLContext:
    """The certificates providers are checked against: httpx's (SSL_CERT_FILE or SSL_CERT_DIR,
    else certifi's), read once per process like the settings. Loading them takes about 10 ms
    of CPU; the transport and its session each loaded them when an event loop's first reply
    started, holding up every request on that loop. chatsite/asgi.py loads them at start-up."""
    return httpx.create_ssl_context()


def aiohttp_session() -> aiohttp.ClientSession:
    """The transport's session, made on the loop by its first request."""
    # Idle connections are kept for the next reply, which usually comes within a minute; a
    # connection the provider closed meanwhile is noticed and replaced.
    connector = aiohttp.TCPConnector(
        limit=settings.PROVIDER_MAX_CONNECTIONS,
        keepalive_timeout=60.0,
        ssl=provider_ssl_context(),
    )
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())


def close_clients() -> None:
    """Close the clients of loops that have stopped (the process is exiting): aiohttp logs an
    error for every session left open."""
    for loop, open_client in list(_clients.items()):
        if not loop.is_closed() and not loop.is_running():
            loop.run_until_complete(open_client.aclose())
            del _clients[loop]


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
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    raise error_for_status(response.status_code, label, error_detail(body), retry_after)


def error_for_status(
    status: int, label: str, detail: str, retry_after: float | None = None
) -> ProviderError:
    """The one mapping of a failure status to its message; in-stream errors name their status."""
    if status in (401, 403):
        message, code = f"{label} rejected the API key (HTTP {status})", "auth_error"
    elif status == 429:
        message, code = f"{label} is rate limiting requests (HTTP 429)", "rate_limited"
        if retry_after is not None:
            message += f"; try again in {retry_after:g} s"
    elif status >= 500:
        message, code = f"{label} had a server error (HTTP {status})", "provider_unavailable"
    else:
        message, code = f"{label} refused the request (HTTP {status})", "bad_request"
    return ProviderError(
        f"{message}: {detail}" if detail else f"{message}.",
        code=code,
        retryable=status == 429 or status >= 500,
        retry_after=retry_after,
        status=status,
    )


def error_detail(body: bytes) -> str:
    """The human part of a provider's error body, whichever shape it has (whole: it is cut
    once redacted, translated_errors)."""
    try:
        payload = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()
    if isinstance(payload, dict):
        error = payload.get("error", payload)
        if isinstance(error, dict):
            return str(error.get("message") or error.get("msg") or error.get("code") or "")
        if isinstance(error, str):
            return error
    return ""


def parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from APIs, and backoff covers it


class EventStream:
    """A provider's open, successful response, its body read as Server-Sent Events."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks

    async def events(self) -> AsyncIterator[ServerSentEvent]:
        decoder = SSEDecoder()
        async for chunk in self._chunks:
            for event in decoder.feed(chunk):
                yield event
        for event in decoder.close():
            yield event

    async def read_rest(self) -> None:
        """Whatever follows the provider's last event (usually only the end of the body)."""
        async for _ in self._chunks:
            pass


@contextlib.asynccontextmanager
async def open_stream(
    url: str, body: dict, headers: dict[str, str], label: str
) -> AsyncIterator[EventStream]:
    """POST a streaming request; the response is open and known to be a success."""
    async with client().stream("POST", url, json=body, headers=headers) as response:
        await raise_for_status(response, label)
        stream = EventStream(await body_chunks(response, label))
        yield stream
        # Reached when the provider's reply ended normally. A response read to its end gives
        # its connection back to the pool: the next reply skips the TCP and TLS handshakes.
        await stream.read_rest()


async def fetch_json(url: str, body: dict, headers: dict[str, str], label: str) -> dict:
    """POST a request for models that cannot stream: the whole reply as one JSON object."""
    response = await client().post(url, json=body, headers=headers)
    await raise_for_status(response, label)
    return parse_json(response.text, label)


async def body_chunks(response: httpx.Response, label: str) -> AsyncIterator[bytes]:
    """The body's chunks as they come. One sent as JSON is read whole first: some gateways
    answer a streaming request with 200 and an error object (a balance run out), whose reason
    the reply keeps; anything else in it is still read as events."""
    if response.headers.get("content-type", "").lower().startswith("application/json"):
        body = await response.aread()
        if (detail := json_error(body)) is not None:
            message = f"{label} answered with an error instead of a stream: {detail}"
            raise ProviderError(message, code="provider_error", status=response.status_code)
        return one_chunk(body)
    # Event streams usually come uncompressed: their raw bytes skip httpx's decoder layer,
    # one generator step per chunk.
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    return response.aiter_raw() if encoding in ("", "identity") else response.aiter_bytes()


def json_error(body: bytes) -> str | None:
    """The reason in a JSON error object ({"error": …}), None for a body that is none."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if isinstance(payload, dict) and "error" in payload:
        return error_detail(body) or "no reason given"
    return None


async def one_chunk(body: bytes) -> AsyncIterator[bytes]:
    yield body


def parse_json(data: str, label: str) -> dict:
    try:
        payload = orjson.loads(data)  # every chunk of every reply: several times json's speed
    except orjson.JSONDecodeError:
        payload = parse_json_leniently(data, label)
    if not isinstance(payload, dict):
        raise ProviderError(f"{label} sent a malformed response.", code="malformed")
    return payload


def parse_json_leniently(data: str, label: str) -> object:
    """The json module's reading of what orjson refused: it keeps half of a UTF-16 pair, which
    a provider may send when it splits a character across chunks (the relay joins them)."""
    try:
        return json.loads(data)
    except ValueError:
        raise ProviderError(f"{label} sent a malformed response.", code="malformed") from None
