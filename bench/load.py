"""The load client: many concurrent streams over raw asyncio connections, every chunk timed.

httpx would cost more CPU per chunk than the relays it measures, on the same two cores, so
this speaks just enough HTTP/1.1 itself: one request at a time per keep-alive connection,
Content-Length and chunked bodies. Each token carries the stub's CLOCK_MONOTONIC send time
(" @<µs>"); a chunk's latency is the receive time of the read that completed its event
minus that stamp. Time to first token runs from just before connecting to that read.
"""

import asyncio
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

STAMP = re.compile(rb" @(\d+)")
SLACK_SECONDS = 60.0  # a stream taking this much longer than its schedule has failed


class HttpConnection(asyncio.Protocol):
    """One client connection; exchange() sends a request and reads its whole response."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future | None = None
        self.on_body: Callable[[bytes, int], None] | None = None
        self.state = "idle"

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed mid-response"))

    async def exchange(
        self, request: bytes, on_body: Callable[[bytes, int], None] | None = None
    ) -> tuple[int, bytes]:
        """Status and body; a streamed body goes to on_body(bytes, receive_ns) instead."""
        if self.transport is None:
            raise ConnectionError("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.on_body, self.body, self.state = on_body, bytearray(), "head"
        self.transport.write(request)
        return await self.waiter

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        self.buffer += data
        while self.buffer and self._step(now):
            pass

    def _step(self, now: int) -> bool:
        """Parse what the buffer holds for the current state; False when it needs more."""
        buffer = self.buffer
        if self.state == "head":
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return False
            self._head(bytes(buffer[:end]).decode("latin-1"))
            del buffer[: end + 4]
        elif self.state == "length":
            take = min(len(buffer), self.left)
            self._deliver(bytes(buffer[:take]), now)
            del buffer[:take]
            self.left -= take
            if not self.left:
                self._complete()
        elif self.state == "size":
            end = buffer.find(b"\r\n")
            if end < 0:
                return False
            self.left = int(bytes(buffer[:end]).split(b";")[0], 16)
            del buffer[: end + 2]
            self.state = "data" if self.left else "trailer"
        elif self.state == "data":
            take = min(len(buffer), self.left)
            self._deliver(bytes(buffer[:take]), now)
            del buffer[:take]
            self.left -= take
            self.state = "data" if self.left else "data-end"
        elif self.state == "data-end":
            if len(buffer) < 2:
                return False
            del buffer[:2]
            self.state = "size"
        elif self.state == "trailer":
            end = buffer.find(b"\r\n")
            if end < 0:
                return False
            del buffer[: end + 2]
            if end == 0:
                self._complete()
        else:
            return False  # bytes with no request waiting: ignore until the next exchange
        return True

    def _head(self, head: str) -> None:
        lines = head.split("\r\n")
        self.status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            self.state = "size"
        else:
            self.left = int(headers.get("content-length", "0"))
            self.state = "length"
            if not self.left:
                self._complete()

    def _deliver(self, data: bytes, now: int) -> None:
        if self.on_body is not None:
            self.on_body(data, now)
        else:
            self.body += data

    def _complete(self) -> None:
        self.state = "idle"
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((self.status, bytes(self.body)))


@dataclass
class StreamResult:
    started_ns: int = 0
    first_token_ns: int | None = None
    last_token_ns: int = 0
    chunks: int = 0
    latencies_us: list[int] = field(default_factory=list)  # every token but the first
    done: bool = False
    error: str = ""

    def feed(self, data: bytes, now: int, pending: bytearray) -> None:
        """Record the tokens of every event this read completed."""
        pending += data
        cut = pending.rfind(b"\n\n")
        if cut < 0:
            return
        events = bytes(pending[:cut]).split(b"\n\n")
        del pending[: cut + 2]
        now_us = now // 1000
        for event in events:
            if b"event: done" in event or b"data: [DONE]" in event:
                self.done = True  # (chatsite's done event repeats the text: not counted)
                continue
            if b"event: error" in event or event.startswith(b'data: {"error"'):
                self.error = event.decode(errors="replace")[:300]
                continue
            for stamp in STAMP.findall(event):
                if self.first_token_ns is None:
                    self.first_token_ns = now
                else:
                    self.latencies_us.append(now_us - int(stamp))
                self.chunks += 1
                self.last_token_ns = now


def post_request(path: str, body: bytes, extra: str = "") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


def get_request(path: str, extra: str = "") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n{extra}\r\n"
    ).encode()


def spec_text(tokens: int, rate: float) -> str:
    return json.dumps({"tokens": tokens, "rate": rate, "ttft": 0})


async def connect(port: int) -> HttpConnection:
    _, protocol = await asyncio.get_running_loop().create_connection(
        HttpConnection, "127.0.0.1", port
    )
    return protocol


async def openai_stream(
    port: int, tokens: int, rate: float, model: str = "bench", extra: str = ""
) -> StreamResult:
    """One streamed chat completion from an OpenAI-compatible server (stub, floor, chatsite's
    /v1 endpoint, which needs the model's id and an API key in `extra`)."""
    result, pending = StreamResult(started_ns=time.monotonic_ns()), bytearray()
    body = json.dumps(
        {
            "model": model,
            "stream": True,
            "messages": [{"role": "user", "content": spec_text(tokens, rate)}],
        }
    ).encode()
    connection = await connect(port)
    try:
        status, _ = await connection.exchange(
            post_request("/v1/chat/completions", body, extra),
            lambda data, now: result.feed(data, now, pending),
        )
        if status != 200:
            result.error = f"HTTP {status}"
    finally:
        connection.close()
    return result


async def chatsite_stream(
    port: int, tokens: int, rate: float, login: "ChatLogin", same_connection: bool = True
) -> StreamResult:
    """POST the message, then follow its stream_url (on the same keep-alive connection, or a
    new one, which with several workers may reach another process)."""
    result, pending = StreamResult(started_ns=time.monotonic_ns()), bytearray()
    body = json.dumps({"content": spec_text(tokens, rate)}).encode()
    connection = await connect(port)
    try:
        path = f"/api/conversations/{login.conversation}/messages/"
        status, answer = await connection.exchange(post_request(path, body, login.headers))
        if status != 201:
            result.error = f"POST HTTP {status}: {answer[:200]!r}"
            return result
        stream_url = json.loads(answer)["stream_url"]
        if not same_connection:
            connection.close()
            connection = await connect(port)
        status, _ = await connection.exchange(
            get_request(stream_url, login.headers),
            lambda data, now: result.feed(data, now, pending),
        )
        if status != 200:
            result.error = f"GET HTTP {status}"
    finally:
        connection.close()
    return result


@dataclass
class ChatLogin:
    """A logged-in user's cookies and CSRF header, and a fresh conversation to post to."""

    session_key: str
    csrf: str
    conversation: str

    @property
    def headers(self) -> str:
        return (
            f"Cookie: sessionid={self.session_key}; csrftoken={self.csrf}\r\n"
            f"X-CSRFToken: {self.csrf}\r\n"
        )


async def guarded(stream, expected_tokens: int, limit_seconds: float) -> StreamResult:
    """Run one stream to its end; anything short of every token plus done is a failure."""
    started = time.monotonic_ns()
    try:
        async with asyncio.timeout(limit_seconds):
            result = await stream
    except Exception as error:  # a failed stream is a figure, not a crash
        return StreamResult(started_ns=started, error=f"{type(error).__name__}: {error}"[:300])
    if not result.error and (not result.done or result.chunks != expected_tokens):
        result.error = f"incomplete: {result.chunks}/{expected_tokens} tokens, done={result.done}"
    return result


async def run_streams(make_stream, count: int, tokens: int, rate: float, ramp: float,
                      sequential: bool) -> tuple[list[StreamResult], int]:  # fmt: skip
    """`count` streams started evenly over `ramp` seconds (or one after another).

    make_stream(i) returns stream i's coroutine. Returns the results and the most streams
    that were open at once.
    """
    duration = tokens / rate if rate else 1.0
    timeout = duration + SLACK_SECONDS
    open_now = peak = 0

    async def one(i: int) -> StreamResult:
        nonlocal open_now, peak
        if ramp and not sequential:
            await asyncio.sleep(ramp * i / count)
        open_now += 1
        peak = max(peak, open_now)
        try:
            return await guarded(make_stream(i), tokens, timeout)
        finally:
            open_now -= 1

    if sequential:
        return [await one(i) for i in range(count)], 1
    results = await asyncio.gather(*(one(i) for i in range(count)))
    return list(results), peak
