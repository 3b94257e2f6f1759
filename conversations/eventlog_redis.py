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

from chatsite.redis_cache import reconnecting
from conversations.eventlog import (
    EventLogUnavailable,
    Frames,
    InProcessEventLog,
    encode_event,
)
from conversations.eventlog_redis_batches import Appends, Reads

logger = logging.getLogger(__name__)
OPEN_TTL_SECONDS = 24 * 3600  # a reply's stream outlives any sane generation
# For users: no address (REDIS_URL may hold a password), no driver message.
UNREACHABLE = "The event log (Redis) cannot be reached."

# What each new connection tells Redis about its client (CLIENT SETINFO), made once: left to
# redis-py, every connection looks its version up in the installed packages' metadata, and
# with a connection per open stream that was a large part of starting hundreds of streams.
DRIVER_INFO = DriverInfo()


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
        self.appends = Appends(self.redis, OPEN_TTL_SECONDS)
        # The reader's XREAD is not sent again on a new connection: one it did not see would
        # leave its wake-ups (CLIENT UNBLOCK) aimed at the old connection's id. It reconnects.
        self.reads = Reads(
            redis.Redis.from_url(
                url,
                max_connections=settings.CHATSITE_REDIS_MAX_CONNECTIONS,
                driver_info=DRIVER_INFO,
            )
        )


class RedisEventLog:
    def __init__(self, url: str, prefix: str) -> None:
        self._url = url
        self._prefix = prefix
        self._loops: dict[asyncio.AbstractEventLoop, _OnLoop] = {}
        self._next_id: dict[UUID, int] = {}  # only the producing process appends
        self._unshared: dict[UUID, int] = {}  # reply -> its first event Redis may lack
        self._here = InProcessEventLog()  # the replies this process produces
        self._stop_callbacks: list[Callable[[UUID, str], None]] = []
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
        except asyncio.CancelledError:
            # Stopped while its batch was in flight: whether Redis took the event is unknown,
            # so close() sends it again (refused by id if it did) rather than leave a gap.
            self._unshared[reply_id] = event_id
            raise

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

    async def request_stop(self, reply_id: UUID, code: str = "") -> bool:
        try:
            message = f"{reply_id} {code}".rstrip()  # a code is one word: no reason text
            receivers = await self._redis().publish(f"{self._prefix}:stop", message)
        except (redis.RedisError, OSError) as error:
            logger.warning("Could not ask for reply %s to stop: %r", reply_id, error)
            return False  # no one could be asked: the caller stores it as stopped itself
        return receivers > 0

    def on_stop_request(self, callback: Callable[[UUID, str], None]) -> None:
        """Call `callback(reply_id, code)` for every stop request; listens from the running
        loop."""
        self._stop_callbacks.append(callback)
        if self._listener is None or self._listener.done():
            self._listener = asyncio.get_running_loop().create_task(self._listen())

    def _stop_requested(self, data: bytes) -> None:
        """A stop request, "<reply id>" or "<reply id> <code>"; one not of this form (from a
        newer or older chatsite) is logged, and listening goes on."""
        reply_id, _, code = data.decode(errors="replace").partition(" ")
        try:
            parsed = UUID(reply_id)
        except ValueError:
            logger.warning("Ignored a stop request not understood: %r", data[:100])
            return
        for callback in self._stop_callbacks:
            callback(parsed, code)

    async def _listen(self) -> None:
        while True:
            try:
                async with self._redis().pubsub() as pubsub:
                    await pubsub.subscribe(f"{self._prefix}:stop")
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            self._stop_requested(message["data"])
            except (redis.RedisError, OSError):
                logger.exception("Lost the stop channel; listening again in a second")
                await asyncio.sleep(1)
