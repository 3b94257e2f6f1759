"""A provider stub: a real HTTP/1.1 server on loopback that writes exact wire bytes.

Tests queue scripted responses (status, headers, body chunks, pauses, gates, a dropped
connection); each request takes the next one. The stub records every request and notices
when its client goes away, so a test can prove that stop closed the upstream connection.
It runs its own event loop in a thread and speaks chunked transfer encoding with keep-alive,
over TLS when given an SSL context.
"""

import asyncio
import json
import ssl
import threading
from dataclasses import dataclass, field

DEFAULT_WAIT = 30.0


class Gate:
    """A point the stub's response waits at until the test opens it."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reached = threading.Event()

    def open(self) -> None:
        self._event.set()

    def wait_reached(self, timeout: float = DEFAULT_WAIT) -> None:
        if not self.reached.wait(timeout):
            raise AssertionError("the stub never reached this gate")


@dataclass
class Script:
    """One scripted response. Steps are bytes (written as one chunk), floats (pause in
    seconds), Gates (wait for the test), or the string "drop" (cut the connection)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/event-stream"})
    steps: list = field(default_factory=list)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    connection: int = 0  # which of the stub's connections it came on, counted from 1
    disconnected: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    def wait_disconnected(self, timeout: float = DEFAULT_WAIT) -> bool:
        return self.disconnected.wait(timeout)


class ProviderStub:
    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl = ssl_context  # serve HTTPS with it
        self.requests: list[RecordedRequest] = []
        self._scripts: list[Script] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="provider-stub", daemon=True)
        self._connections = 0
        self.port = 0

    # --- control, from the test thread -------------------------------------------
    def start(self) -> "ProviderStub":
        self._thread.start()
        self._started.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def url(self) -> str:
        return f"{'https' if self._ssl else 'http'}://127.0.0.1:{self.port}"

    def queue(self, *scripts: Script) -> None:
        with self._lock:
            self._scripts.extend(scripts)

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self.requests.clear()
        self._released.clear()

    def release(self) -> None:
        """Open every gate, now and until the next reset, so no response stays held."""
        self._released.set()

    def wait_for_requests(self, count: int, timeout: float = DEFAULT_WAIT) -> RecordedRequest:
        """Block until `count` requests arrived; return the last of them."""
        deadline = threading.Event()
        for _ in range(int(timeout * 100)):
            if len(self.requests) >= count:
                return self.requests[count - 1]
            deadline.wait(0.01)
        raise AssertionError(f"the stub got {len(self.requests)} requests, not {count}")

    # --- the server, on its own loop ----------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        listening = asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._ssl)
        server = self._loop.run_until_complete(listening)
        self.port = server.sockets[0].getsockname()[1]
        self._started.set()
        self._loop.run_forever()
        # Stopped: the connections a client still keeps alive end with the stub (a TLS one
        # left pending complained at exit that its loop was gone).
        server.close()
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections += 1
        connection = self._connections
        try:
            while True:
                request = await read_request(reader)
                if request is None:
                    return
                request.connection = connection
                with self._lock:
                    self.requests.append(request)
                    script = self._scripts.pop(0) if self._scripts else default_script()
                keep_open = await self._respond(script, request, reader, writer)
                request.finished.set()
                if not keep_open:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def _respond(
        self,
        script: Script,
        request: RecordedRequest,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        head = [f"HTTP/1.1 {script.status} Stub", "Transfer-Encoding: chunked"]
        head += [f"{name}: {value}" for name, value in script.headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        await writer.drain()
        watcher = asyncio.ensure_future(watch_disconnect(reader, request))
        try:
            for step in script.steps:
                if step == "drop":
                    writer.transport.abort()
                    return False
                if isinstance(step, bytes):
                    if step:
                        writer.write(b"%x\r\n%s\r\n" % (len(step), step))
                        await writer.drain()
                elif isinstance(step, (int, float)):
                    await asyncio.sleep(step)
                elif isinstance(step, Gate):
                    step.reached.set()
                    await wait_gate(step, request, self._released)
                if request.disconnected.is_set():
                    return False
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        finally:
            # Wait for the cancel to land: a still-pending read would race the next request.
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)


async def read_request(reader: asyncio.StreamReader) -> RecordedRequest | None:
    line = await reader.readline()
    if not line:
        return None
    method, path, _ = line.decode().split(" ", 2)
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", 0)))
    return RecordedRequest(method, path, headers, body)


async def watch_disconnect(reader: asyncio.StreamReader, request: RecordedRequest) -> None:
    """The client sends nothing while a response streams, so any EOF means it went away."""
    try:
        data = await reader.read(1)
    except ConnectionError:
        data = b""
    if not data:
        request.disconnected.set()


async def wait_gate(gate: Gate, request: RecordedRequest, released: threading.Event) -> None:
    # All are threading.Events set from other threads: poll them.
    events = (gate._event, request.disconnected, released)
    while not any(event.is_set() for event in events):  # noqa: ASYNC110
        await asyncio.sleep(0.005)


# --- OpenAI-compatible wire bytes ----------------------------------------------------
def sse(payload: object) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


def openai_chunk(
    content: str | None = None,
    finish_reason: str | None = None,
    reasoning: str | None = None,
    reasoning_field: str = "reasoning_content",
) -> bytes:
    delta: dict = {}
    if content is not None:
        delta["content"] = content
    if reasoning is not None:
        delta[reasoning_field] = reasoning
    return sse(
        {
            "id": "chatcmpl-stub",
            "object": "chat.completion.chunk",
            "model": "stub-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            "usage": None,
        }
    )


def openai_usage(prompt: int, completion: int) -> bytes:
    return sse(
        {
            "id": "chatcmpl-stub",
            "object": "chat.completion.chunk",
            "model": "stub-model",
            "choices": [],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
    )


def send_held_reply(client, stub: "ProviderStub", tokens: list[str]) -> dict:
    """Send a message whose reply streams `tokens` and then waits at a gate that never opens
    (a reply still generating); the POST's answer, once the stub has reached the gate."""
    gate = Gate()
    stub.queue(gated_stream(tokens, gate))
    conversation = client.new_conversation()
    body = client.send(conversation["id"], "Go").json()
    gate.wait_reached()
    return body


def openai_stream(
    tokens: list[str],
    usage: tuple[int, int] | None = (11, 7),
    pause: float = 0.0,
    finish_reason: str = "stop",
    reasoning: list[str] = (),
) -> Script:
    """A complete streamed reply, as OpenAI sends it with include_usage; `reasoning` comes
    first, as reasoning_content."""
    steps: list = [openai_chunk("")]  # the role chunk: {"role": "assistant", "content": ""}
    steps += [openai_chunk(reasoning=text) for text in reasoning]
    for token in tokens:
        if pause:
            steps.append(pause)
        steps.append(openai_chunk(token))
    steps.append(openai_chunk(finish_reason=finish_reason))
    if usage:
        steps.append(openai_usage(*usage))
    steps.append(sse("[DONE]"))
    return Script(steps=steps)


def gated_stream(
    before: list[str],
    gate: Gate,
    after: list[str] | None = None,
    usage: tuple[int, int] | None = (11, 7),
) -> Script:
    """A reply that streams `before`, waits at `gate`, then streams `after` and ends as
    openai_stream does. Without `after` it never ends: a reply still generating (the stub
    opens every gate when the test is over, and the reply then fails as cut short)."""
    whole = openai_stream(before + (after or []), usage).steps
    steps = [*whole[: 1 + len(before)], gate]  # the role chunk, then `before`
    if after is not None:
        steps += whole[1 + len(before) :]
    return Script(steps=steps)


def json_error(status: int, message: str, headers: dict | None = None) -> Script:
    body = json.dumps({"error": {"message": message, "type": "stub_error", "code": None}})
    return Script(
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
        steps=[body.encode()],
    )


def default_script() -> Script:
    return openai_stream(["Hello", " from", " the", " stub."])
