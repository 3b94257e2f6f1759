"""The event log on Redis, for chatsite on several processes.

Each reply is a Redis stream whose entry ids are `0-N`, N being the SSE event id, so a
follower resumes with XREAD from `0-<Last-Event-ID>`. Stop requests travel on one pub/sub
channel that every process listens to; the process producing the reply acts on it.

The producing process also keeps its replies' events in memory, added just before Redis gets
them: its own followers read them there, as on one process, instead of a Redis read per token
each (and what they saw is what the producer stores, even if Redis then fails).
"""

import asyncio
import contextvars
import logging
from collections.abc import Callable
from uuid import UUID

import redis.asyncio as redis
from django.conf import settings
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.driver_info import DriverInfo

from conversations.eventlog import (
    EventLogUnavailable,
    Frames,
    InProcessEventLog,
    ReplyEvents,
    encode_event,
    follow_events,
)

logger = logging.getLogger(__name__)
OPEN_TTL_SECONDS = 24 * 3600  # a reply's stream outlives any sane generation
# For users: no address (REDIS_URL may hold a password), no driver message.
UNREACHABLE = "The event log (Redis) cannot be reached."

# What each new connection tells Redis about its client (CLIENT SETINFO), made once: left to
# redis-py, every connection looks its version up in the installed packages' metadata, and
# with a connection per open stream that was a large part of starting hundreds of streams.
DRIVER_INFO = DriverInfo()


def reconnecting() -> Retry:
    # A command finding its pooled connection dropped (Redis restarted) goes again on a new
    # one; redis-py retries nothing by default. Not timeouts: a hung Redis would cost thrice.
    return Retry(
        ExponentialBackoff(cap=0.25, base=0.01), 2, supported_errors=(redis.ConnectionError,)
    )


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


class _Reads:
    """Every reply this process follows from another process, read by one XREAD at a time.

    A blocking XREAD per follower held a Redis connection per open stream and cost a read per
    token each. Here one reader copies each followed reply's events, from the first, into
    ReplyEvents, and followers read those as they read a reply produced here (follow_events):
    a follower joining late starts from the copy. A reply not read yet wakes the reader
    (CLIENT UNBLOCK), so its next XREAD includes it.
    """

    # At most this long before the reader's XREAD includes a newly followed reply, should the
    # wake-up reach Redis before the XREAD it meant to cut short.
    BLOCK_MS = 250

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._replies: dict[str, ReplyEvents] = {}  # by Redis key: the events read so far
        self._followers: dict[str, int] = {}  # by Redis key: how many follow it here
        self._reader: asyncio.Task | None = None
        self._reader_id: int | None = None  # its connection's CLIENT ID

    async def follow(self, key: str, after: int, idle_seconds: float) -> Frames:
        events = self._replies.get(key)
        if events is None:
            events = self._replies[key] = ReplyEvents()
            await self._include(key)
        self._followers[key] = self._followers.get(key, 0) + 1
        try:
            async for position, frames in follow_events(events, after, idle_seconds):
                yield position, frames
        finally:
            self._followers[key] -= 1
            if not self._followers[key]:
                del self._followers[key], self._replies[key]
                events.forget()

    async def _include(self, key: str) -> None:
        if self._reader is None or self._reader.done():
            # A fresh context: the reader outlives the request whose stream started it.
            loop = asyncio.get_running_loop()
            self._reader = loop.create_task(self._read(), context=contextvars.Context())
        elif self._reader_id is not None:
            try:
                await self._client.client_unblock(self._reader_id)
            except (redis.RedisError, OSError):  # the reader's next XREAD includes it anyway
                logger.warning("Could not wake the Redis reader for %s", key, exc_info=True)

    async def _read(self) -> None:
        while self._unfinished():
            try:
                async with self._client.client() as connection:
                    self._reader_id = await connection.client_id()
                    while streams := self._unfinished():
                        found = await connection.xread(streams, block=self.BLOCK_MS)
                        # Pairs in RESP2, a dict in RESP3 (REDIS_URL may ask for either).
                        pairs = found.items() if isinstance(found, dict) else found or []
                        for key, entries in pairs:
                            self._copy(key.decode() if isinstance(key, bytes) else key, entries)
            except (redis.RedisError, OSError):
                # Followers send heartbeats meanwhile; the stream view checks the database.
                logger.exception("Reading followed replies failed; reading again in a second")
                self._reader_id = None
                await asyncio.sleep(1)

    def _unfinished(self) -> dict[str, str]:
        """XREAD's streams: each followed reply not ended yet, after the events read so far."""
        return {
            key: f"0-{len(events.frames)}"
            for key, events in self._replies.items()
            if not events.closed
        }

    def _copy(self, key: str, entries: list) -> None:
        events = self._replies.get(key)
        for entry_id, fields in entries if events is not None else ():
            # Only the next event in sequence: entries read for a copy since dropped and begun
            # again (every follower left, another came) start later than the new copy.
            if int(entry_id.split(b"-")[1]) != len(events.frames) + 1:
                return
            events.add(fields[b"f"], last=b"end" in fields)


class _OnLoop:
    """A client and what shares it, for one event loop (a client cannot cross loops; tests
    run several)."""

    def __init__(self, url: str) -> None:
        self.redis = redis.Redis.from_url(
            url,
            max_connections=settings.CHATSITE_REDIS_MAX_CONNECTIONS,
            driver_info=DRIVER_INFO,
            retry=reconnecting(),
        )
        self.appends = _Appends(self.redis)
        self.reads = _Reads(self.redis)


class RedisEventLog:
    def __init__(self, url: str, prefix: str) -> None:
        self._url = url
        self._prefix = prefix
        self._loops: dict[asyncio.AbstractEventLoop, _OnLoop] = {}
        self._next_id: dict[UUID, int] = {}  # only the producing process appends
        self._unshared: dict[UUID, int] = {}  # reply -> its first event Redis may lack
        self._here = InProcessEventLog()  # the replies this process produces
        self._stop_callbacks: list[Callable[[UUID], None]] = []
        self._listener: asyncio.Task | None = None

    def _on_loop(self) -> _OnLoop:
        loop = asyncio.get_running_loop()
        if loop not in self._loops:
            self._loops[loop] = _OnLoop(self._url)
        return self._loops[loop]

    def _redis(self) -> redis.Redis:
        return self._on_loop().redis

    def _key(self, reply_id: UUID) -> str:
        return f"{self._prefix}:reply:{reply_id}"

    async def open(self, reply_id: UUID) -> None:
        try:
            await self._redis().set(f"{self._key(reply_id)}:open", 1, ex=OPEN_TTL_SECONDS)
        except (redis.RedisError, OSError) as error:
            logger.warning("Could not open the event log of reply %s: %r", reply_id, error)
            raise EventLogUnavailable(UNREACHABLE) from None
        self._next_id[reply_id] = 1
        await self._here.open(reply_id)

    async def append(self, reply_id: UUID, name: str, payload: object) -> None:
        event_id = self._next_id[reply_id]
        self._next_id[reply_id] = event_id + 1
        frame = encode_event(event_id, name, payload)
        self._here.add_frame(reply_id, frame)
        if reply_id in self._unshared:
            return  # sent with the last event (close), should Redis answer again by then
        try:
            await self._on_loop().appends.add(self._key(reply_id), frame, f"0-{event_id}")
        except (redis.RedisError, OSError) as error:
            # The reply goes on: streams here still get every event; streams elsewhere get the
            # rest when it ends (close), or read it from the database if Redis is still down.
            logger.warning("Redis failed mid-reply %s; finishing it unshared: %r", reply_id, error)
            self._unshared[reply_id] = event_id

    async def close(self, reply_id: UUID, name: str, payload: object) -> None:
        event_id = self._next_id.pop(reply_id)
        frame = encode_event(event_id, name, payload)
        key = self._key(reply_id)
        retention = max(1, int(settings.CHATSITE_EVENT_RETENTION_SECONDS))
        self._here.add_frame(reply_id, frame, last=True)
        # Events Redis missed mid-reply (a stall, a timeout) go first, so streams elsewhere
        # get every event in order. One that arrived after all is refused by id, harmlessly.
        missed_from = self._unshared.pop(reply_id, event_id)
        missed = self._here.frames_from(reply_id, missed_from)[:-1]
        try:
            async with self._redis().pipeline(transaction=True) as pipe:
                for number, missed_frame in enumerate(missed, start=missed_from):
                    pipe.xadd(key, {"f": missed_frame}, id=f"0-{number}")
                pipe.xadd(key, {"f": frame, "end": 1}, id=f"0-{event_id}")
                pipe.expire(key, retention)
                pipe.expire(f"{key}:open", retention)
                results = await pipe.execute(raise_on_error=False)
        except (redis.RedisError, OSError) as error:  # the reply is stored all the same
            logger.warning("Could not close the event log of reply %s: %r", reply_id, error)
        else:
            if failed := [r for r in results[len(missed) :] if isinstance(r, Exception)]:
                logger.warning("Could not close the event log of reply %s: %r", reply_id, failed[0])

    async def follow(self, reply_id: UUID, after: int, idle_seconds: float) -> Frames | None:
        if (produced_here := await self._here.follow(reply_id, after, idle_seconds)) is not None:
            return produced_here
        try:
            if not await self._redis().exists(f"{self._key(reply_id)}:open"):
                return None
        except (redis.RedisError, OSError) as error:
            logger.warning("Could not follow reply %s: %r", reply_id, error)
            raise EventLogUnavailable(UNREACHABLE) from None
        return self._on_loop().reads.follow(self._key(reply_id), after, idle_seconds)

    async def rest_of(self, reply_id: UUID, after: int) -> bytes | None:
        try:
            entries = await self._redis().xrange(self._key(reply_id), min=f"0-{after + 1}")
        except (redis.RedisError, OSError):
            return None
        frames = []
        for number, (entry_id, fields) in enumerate(entries, start=after + 1):
            if entry_id != f"0-{number}".encode():
                return None  # a gap: events Redis never got
            frames.append(fields[b"f"])
            if b"end" in fields:
                return b"".join(frames)
        return None

    async def request_stop(self, reply_id: UUID) -> bool:
        try:
            receivers = await self._redis().publish(f"{self._prefix}:stop", str(reply_id))
        except (redis.RedisError, OSError) as error:
            logger.warning("Could not ask for reply %s to stop: %r", reply_id, error)
            return False  # no one could be asked: the caller stores it as stopped itself
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
