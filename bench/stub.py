"""The benchmark's provider: an OpenAI-compatible streaming server that costs almost nothing.

A raw asyncio Protocol (no HTTP library): it reads a chat-completions POST, takes its
schedule from the last user message (JSON: {"tokens": N, "rate": per second, "ttft":
seconds}; rate 0 means as fast as the loop can write), and writes each token as its own
SSE chunk at its scheduled time with a loop timer. Every token's text is " @<µs>", the
stub's CLOCK_MONOTONIC when it wrote the token: the load client, on the same machine,
subtracts it from its own receive time to get each chunk's latency through any relay.

Run: python -m bench.stub PORT
"""

import asyncio
import json
import sys
import time

HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
ENVELOPE = b'{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":0,"model":"bench",'
ROLE = (
    b"data: "
    + ENVELOPE
    + b'"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
)
TOKEN = (
    b"data: "
    + ENVELOPE
    + b'"choices":[{"index":0,"delta":{"content":" @%d"},"finish_reason":null}]}\n\n'
)
FINISH = b"data: " + ENVELOPE + b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
USAGE = (
    b"data: "
    + ENVELOPE
    + b'"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":%d,"total_tokens":%d}}\n\n'
)
DONE = b"data: [DONE]\n\n"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def schedule_of(body: bytes) -> tuple[int, float, float]:
    """(tokens, rate, ttft) from the request's last message; small defaults otherwise."""
    try:
        messages = json.loads(body)["messages"]
        spec = json.loads(messages[-1]["content"])
        return int(spec["tokens"]), float(spec["rate"]), float(spec.get("ttft", 0.0))
    except (ValueError, KeyError, IndexError, TypeError):
        return 20, 0.0, 0.0


class StubProtocol(asyncio.Protocol):
    """One connection: requests one after another (keep-alive), one streamed reply each."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.streaming = False

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.streaming:
            self.next_request()

    def next_request(self) -> None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].decode("latin-1").lower()
        length = 0
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name == "content-length":
                length = int(value)
        if len(self.buffer) < end + 4 + length:
            return
        body = self.buffer[end + 4 : end + 4 + length]
        self.buffer = self.buffer[end + 4 + length :]
        if not head.startswith("post ") or "/chat/completions" not in head.split("\r\n")[0]:
            self.transport.write(NOT_FOUND)
            return self.next_request()
        self.start_reply(*schedule_of(body))

    def start_reply(self, tokens: int, rate: float, ttft: float) -> None:
        self.streaming = True
        self.transport.write(HEAD + chunk(ROLE))
        self.tokens, self.sent = tokens, 0
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.first_at = self.loop.time() + ttft
        if ttft > 0:
            self.timer = self.loop.call_at(self.first_at, self.write_token)
        else:
            self.timer = self.loop.call_soon(self.write_token)

    def write_token(self) -> None:
        if self.transport is None:
            return
        if self.sent == self.tokens:
            return self.finish()
        self.transport.write(chunk(TOKEN % (time.monotonic_ns() // 1000)))
        self.sent += 1
        if self.interval:
            # On the grid first_at + i * interval: a late tick does not delay the rest.
            self.timer = self.loop.call_at(
                self.first_at + self.sent * self.interval, self.write_token
            )
        else:
            self.timer = self.loop.call_soon(self.write_token)

    def finish(self) -> None:
        usage = USAGE % (self.tokens, self.tokens + 10)
        self.transport.write(chunk(FINISH) + chunk(usage) + chunk(DONE) + b"0\r\n\r\n")
        self.streaming, self.timer = False, None
        self.next_request()


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(StubProtocol, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
