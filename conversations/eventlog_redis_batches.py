"""The Redis event log's traffic, batched per process: every producer's appends in one
pipeline per round trip, and every reply followed from another process in one XREAD.
"""

import asyncio
import contextvars
import logging

import redis.asyncio as redis

from conversations.eventlog import Frames, ReplyEvents, follow_events

logger = logging.getLogger(__name__)

FIRST_ENTRY = "0-1"  # a reply's first event, in its stream


class Appends:
    """The XADDs of every producer in the process, sent together in one pipeline per round
    trip: a command, a pool checkout and a wait per token per reply cost a quarter of a
    worker's CPU at 1,000 streams. Each append still returns only once Redis has its entry."""

    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self._client = client
        self._ttl_seconds = ttl_seconds
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
        failed = await asyncio.shield(stored)
        if key in failed:
            raise failed[key]

    async def _send_queued(self) -> None:
        while self._queued:
            batch, stored = self._queued, self._stored
            self._queued, self._stored = [], None
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for key, frame, entry_id in batch:
                        pipe.xadd(key, {"f": frame}, id=entry_id)
                    # After the XADDs (their results first): a reply's stream expires from its
                    # first event, so one never closed (its process killed) does not stay.
                    for key, _, entry_id in batch:
                        if entry_id == FIRST_ENTRY:
                            pipe.expire(key, self._ttl_seconds)
                    results = (await pipe.execute(raise_on_error=False))[: len(batch)]
            except Exception as error:  # each waiting producer fails its reply with it
                stored.set_exception(error)
                stored.exception()  # retrieved here: no warning if every waiter was stopped
            else:
                # Only the replies whose own entry Redis refused fail.
                stored.set_result({
                    key: result
                    for (key, _, _), result in zip(batch, results, strict=True)
                    if isinstance(result, Exception) and not already_stored(result)
                })  # fmt: skip
            finally:
                if not stored.done():  # this task was cancelled (shutdown): so are the waits
                    stored.cancel()


def already_stored(error: Exception) -> bool:
    """An XADD refused for its id: Redis has that entry (a pipeline sent again after its
    connection dropped, redis-py's retry, though Redis had applied it the first time)."""
    return isinstance(error, redis.ResponseError) and "equal or smaller" in str(error)


class Reads:
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
        # Counted before the wake-up's round trip: a follower leaving meanwhile (or another
        # joining and leaving) must neither keep the copy for good nor drop it from under it.
        self._followers[key] = self._followers.get(key, 0) + 1
        events = self._replies.get(key)
        try:
            if events is None:
                events = self._replies[key] = ReplyEvents()
                await self._include(key)
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
            except (redis.RedisError, OSError) as error:
                # Followers send heartbeats meanwhile; the stream view checks the database.
                # Expected when Redis restarts: why, without a traceback.
                logger.warning("Reading followed replies failed (%r); again in a second", error)
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
