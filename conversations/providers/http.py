"""The shared httpx client, and a provider's response read as events or as JSON (its failures
translated in failures.py).

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
from collections.abc import AsyncIterator
from http.cookiejar import CookieJar, DefaultCookiePolicy

import aiohttp
import httpx
import orjson
from django.conf import settings
from httpx_aiohttp import AiohttpTransport

from conversations.providers.base import ProviderError
from conversations.providers.failures import error_detail, raise_for_status
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


class EventStream:
    """A provider's open, successful response, its body read as Server-Sent Events; `whole`,
    a body sent as one JSON object instead (a server that ignores "stream": true may send the
    whole completion), for a provider that can read it."""

    def __init__(self, chunks: AsyncIterator[bytes], whole: dict | None = None) -> None:
        self._chunks = chunks
        self.whole = whole

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
        stream = await event_stream(response, label)
        yield stream
        # Reached when the provider's reply ended normally. A response read to its end gives
        # its connection back to the pool: the next reply skips the TCP and TLS handshakes.
        await stream.read_rest()


async def fetch_json(url: str, body: dict, headers: dict[str, str], label: str) -> dict:
    """POST a request for models that cannot stream: the whole reply as one JSON object."""
    response = await client().post(url, json=body, headers=headers)
    await raise_for_status(response, label)
    return parse_json(response.text, label)


async def event_stream(response: httpx.Response, label: str) -> EventStream:
    """The body, its chunks read as they come. One sent as JSON is read whole first: some
    gateways answer a streaming request with 200 and an error object (a balance run out), whose
    reason the reply keeps; any other JSON object is kept as the stream's `whole`, and the body
    is still read as events (some label an event stream as JSON)."""
    if response.headers.get("content-type", "").lower().startswith("application/json"):
        body = await response.aread()
        whole = json_object(body)
        if whole is not None and whole.get("error"):
            detail = error_detail(body) or "no reason given"
            message = f"{label} answered with an error instead of a stream: {detail}"
            raise ProviderError(message, code="provider_error", status=response.status_code)
        return EventStream(one_chunk(body), whole)
    # Event streams usually come uncompressed: their raw bytes skip httpx's decoder layer,
    # one generator step per chunk.
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    chunks = response.aiter_raw() if encoding in ("", "identity") else response.aiter_bytes()
    return EventStream(chunks)


def json_object(body: bytes) -> dict | None:
    """The body as a JSON object, None for a body that is none."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


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
