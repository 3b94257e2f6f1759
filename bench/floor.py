"""The floor: the thinnest useful relay, a bare ASGI app forwarding the provider's bytes.

No Django, no parsing, no storage: the request body goes upstream with httpx and every
chunk that comes back is sent on as it arrives. chatsite does much more per reply, so this
is what its cost is measured against, served by the same server (daphne). httpx's requests go
through its own transport (httpcore), or with BENCH_FLOOR_TRANSPORT=aiohttp through the one
chatsite uses (httpx-aiohttp's): the second floor shows what chatsite adds beyond its client.

Run: BENCH_STUB_URL=http://127.0.0.1:PORT daphne --fd N bench.floor:application
"""

import os

import httpx
from httpx_aiohttp import AiohttpTransport

STUB_URL = os.environ.get("BENCH_STUB_URL", "http://127.0.0.1:9")
MAX_CONNECTIONS = int(os.environ.get("BENCH_MAX_CONNECTIONS", "200"))
ON_AIOHTTP = os.environ.get("BENCH_FLOOR_TRANSPORT") == "aiohttp"
_client: httpx.AsyncClient | None = None


def upstream() -> httpx.AsyncClient:
    """One pooled client, sized like chatsite's (PROVIDER_MAX_CONNECTIONS, 20 kept alive)."""
    global _client
    if _client is None:
        limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=20)
        _client = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=10.0, read=300.0, write=30.0, pool=30.0),
            limits=limits,
            transport=AiohttpTransport(limits=limits) if ON_AIOHTTP else None,
        )
    return _client


async def read_body(receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def application(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    body = await read_body(receive)
    headers = {"content-type": "application/json"}
    async with upstream().stream(
        "POST", STUB_URL + scope["path"], content=body, headers=headers
    ) as response:
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        async for part in response.aiter_raw():
            await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
