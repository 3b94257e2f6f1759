"""A provider stub: a real HTTP/1.1 server on loopback that writes exact wire bytes.

Each request takes the next scripted response (stub.py), or a short OpenAI-compatible reply
when none is queued. The stub records every request and notices when its client goes away,
so a test can prove that stop closed the upstream connection. It runs its own event loop in
a thread and speaks chunked transfer encoding with keep-alive, over TLS when given an SSL
context.
"""

import asyncio
import json
import ssl
import threading
from dataclasses import dataclass, field

from tests.stub import DEFAULT_WAIT, Gate, Script, default_script


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
