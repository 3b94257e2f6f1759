"""The event log on Redis, for chatsite on several processes.

Each reply is a Redis stream whose entry ids are `0-N`, N being the SSE event id, so a
follower resumes with XREAD from `0-<Last-Event-ID>`. Stop requests travel on one pub/sub
channel that every process listens to; the process producing the reply acts on it.

The producing process also keeps its replies' events in memory, added just before Redis gets
them: its own followers read them there, as on one process, instead of a Redis read per token
each (and what they saw is what the producer stores, even if Redis then fails).
"""

import asyncio
import logging
from collections.abc import Callable
from uuid import UUID

import redis.asyncio as redis
from django.conf import settings
from redis.driver_info import DriverInfo

from conversations.eventlog import HEARTBEAT, Frames, InProcessEventLog, encode_event

logger = logging.getLogger(__name__)
OPEN_TTL_SECONDS = 24 * 3600  # a reply's stream outlives any sane generation

# What each new connection tells Redis about its client (CLIENT SETINFO), made once: left to
# redis-py, every connection looks its version up in the installed packages' metadata, and
# with a connection per open stream that was a large part of starting hundreds of streams.
DRIVER_INFO = DriverInfo()


class _Appends:
    """The XADDs of every producer in the process, sent together in one pipeline per round
    trip: a command, a pool checkout and a wait per token per reply cost a quarter of a
    worker's CPU at 1,000 streams. Each append still returns only once Redis has its entry."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._queued: list[tuple[str, bytes, str]] = []
        self._stored: asyncio.Future | None = None  # done when the queued entries are in Redis
        self._sending: asyncio.Task | None = None

    async def add(self, key: str, frame: bytes, entry_id: str) -> None:
        loop = asyncio.get_running_loop()
        if self._stored is None:
            self._stored = loop.create_future()
        stored = self._stored
        self._queued.append((key, frame, entry_id))
        if self._sending is None or self._sending.done():
            self._sending = loop.create_task(self._send_queued())
        # Shielded: the future is shared, and a producer being stopped must not cancel it.
        await asyncio.shield(stored)

    async def _send_queued(self) -> None:
        while self._queued:
            batch, stored = self._queued, self._stored
            self._queued, self._stored = [], None
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for key, frame, entry_id in batch:
                        pipe.xadd(key, {"f": frame}, id=entry_id)
                    await pipe.execute()
            except Exception as error:  # each waiting producer fails its reply with it
                stored.set_exception(error)
                stored.exception()  # retrieved here: no warning if every waiter was stopped
            else:
                stored.set_result(None)
            finally:
                if not stored.done():  # this task was cancelled (shutdown): so are the waits
                    stored.cancel()


class RedisEventLog:
    def __init__(self, url: str, prefix: str) -> None:
        self._url = url
        self._prefix = prefix
        self._clients: dict[asyncio.AbstractEventLoop, redis.Redis] = {}
        self._appends: dict[asyncio.AbstractEventLoop, _Appends] = {}
        self._next_id: dict[UUID, int] = {}  # only the producing process appends
        self._here = InProcessEventLog()  # the replies this process produces
        self._stop_callbacks: list[Callable[[UUID], None]] = []
        self._listener: asyncio.Task | None = None

    def _redis(self) -> redis.Redis:
        loop = asyncio.get_running_loop()
        if loop not in self._clients:
            self._clients[loop] = redis.Redis.from_url(
                self._url,
                max_connections=settings.CHATSITE_REDIS_MAX_CONNECTIONS,
                driver_info=DRIVER_INFO,
            )
        return self._clients[loop]

    def _key(self, reply_id: UUID) -> str:
        return f"{self._prefix}:reply:{reply_id}"

    async def open(self, reply_id: UUID) -> None:
        self._next_id[reply_id] = 1
        await self._here.open(reply_id)
        await self._redis().set(f"{self._key(reply_id)}:open", 1, ex=OPEN_TTL_SECONDS)

    async def append(self, reply_id: UUID, name: str, payload: object) -> None:
        event_id = self._next_id[reply_id]
        self._next_id[reply_id] = event_id + 1
        frame = encode_event(event_id, name, payload)
        self._here.add_frame(reply_id, frame)
        loop = asyncio.get_running_loop()
        if loop not in self._appends:
            self._appends[loop] = _Appends(self._redis())
        await self._appends[loop].add(self._key(reply_id), frame, f"0-{event_id}")

    async def close(self, reply_id: UUID, name: str, payload: object) -> None:
        event_id = self._next_id.pop(reply_id)
        frame = encode_event(event_id, name, payload)
        key = self._key(reply_id)
        retention = max(1, int(settings.CHATSITE_EVENT_RETENTION_SECONDS))
        self._here.add_frame(reply_id, frame, last=True)
        async with self._redis().pipeline(transaction=True) as pipe:
            pipe.xadd(key, {"f": frame, "end": 1}, id=f"0-{event_id}")
            pipe.expire(key, retention)
            pipe.expire(f"{key}:open", retention)
            await pipe.execute()

    async def follow(self, reply_id: UUID, after: int, idle_seconds: float) -> Frames | None:
        if (produced_here := await self._here.follow(reply_id, after, idle_seconds)) is not None:
            return produced_here
        if not await self._redis().exists(f"{self._key(reply_id)}:open"):
            return None
        return self._follow(self._key(reply_id), after, idle_seconds)

    async def _follow(self, key: str, after: int, idle_seconds: float) -> Frames:
        position = max(0, after)
        client = self._redis()
        while True:
            found = await client.xread({key: f"0-{position}"}, block=int(idle_seconds * 1000))
            if not found:
                yield position, HEARTBEAT
                continue
            entries = found[0][1]
            position = int(entries[-1][0].split(b"-")[1])
            yield position, b"".join(fields[b"f"] for _, fields in entries)
            if b"end" in entries[-1][1]:
                return

    async def request_stop(self, reply_id: UUID) -> bool:
        receivers = await self._redis().publish(f"{self._prefix}:stop", str(reply_id))
        return receivers > 0

    def on_stop_request(self, callback: Callable[[UUID], None]) -> None:
        """Call `callback(reply_id)` for every stop request; listens from the running loop."""
        self._stop_callbacks.append(callback)
        if self._listener is None or self._listener.done():
            self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        while True:
            try:
                async with self._redis().pubsub() as pubsub:
                    await pubsub.subscribe(f"{self._prefix}:stop")
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            reply_id = UUID(message["data"].decode())
                            for callback in self._stop_callbacks:
                                callback(reply_id)
            except (redis.RedisError, OSError):
                logger.exception("Lost the stop channel; listening again in a second")
                await asyncio.sleep(1)
