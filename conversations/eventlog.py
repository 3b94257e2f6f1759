"""The reply event log: what a reply's producer has said, for every stream that listens.

The producer appends events; each stream view follows a reply from a given event id,
replaying what it missed and then waiting for more. Event ids are a per-reply sequence
starting at 1, so `Last-Event-ID` resumes exactly. Frames are encoded once, when appended,
and shared by every listener.

InProcessEventLog serves one server process. RedisEventLog (when REDIS_URL is set) lets
several processes share replies: any process can stream any reply and stop it.
"""

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from typing import Protocol
from uuid import UUID

import orjson
from django.conf import settings

HEARTBEAT = b": keep-alive\n\n"

# follow() yields (id of the last event included, bytes to send).
Frames = AsyncIterator[tuple[int, bytes]]


def encode_event(event_id: int, name: str, payload: object) -> bytes:
    # orjson writes compact UTF-8 JSON with no newline in it, as an SSE data line needs, in
    # a seventh of the json module's time: this runs for every token.
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, name.encode(), orjson.dumps(payload))


class EventLogUnavailable(Exception):
    """The shared event log (Redis) cannot be reached; the message says so without its address."""


class EventLog(Protocol):
    async def open(self, reply_id: UUID) -> None:
        """Make the reply's log; EventLogUnavailable if it cannot be made."""

    async def append(self, reply_id: UUID, name: str, payload: object) -> None: ...
    async def close(self, reply_id: UUID, name: str, payload: object) -> None: ...
    async def follow(self, reply_id: UUID, after: int, idle_seconds: float) -> Frames | None:
        """Frames after event `after`, then live ones; None if the log has no such reply.
        EventLogUnavailable if the log cannot be asked."""

    async def rest_of(self, reply_id: UUID, after: int) -> bytes | None:
        """The frames after event `after` through the last, if the log has them all now."""

    async def request_stop(self, reply_id: UUID, code: str = "") -> bool:
        """Ask whichever process produces the reply to stop it, with the `code` of why (a key
        of producers.STOP_REASONS, or empty: its owner's Stop); False if none can be asked."""

    def on_stop_request(self, callback: Callable[[UUID, str], None]) -> None: ...


class ReplyEvents:
    """A reply's frames, and one timer that wakes its followers when it has been silent.

    One timer per reply instead of a timeout per follower per frame: re-arming a timeout for
    every token cost about as much as encoding the token.
    """

    __slots__ = ("closed", "frames", "idle_seconds", "loop", "quiet_since", "timer", "wakeup")

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.closed = False
        self.wakeup = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self.quiet_since = self.loop.time()  # the last frame or heartbeat
        self.idle_seconds = math.inf
        self.timer: asyncio.TimerHandle | None = None

    def add(self, frame: bytes, last: bool = False) -> None:
        """Add the next event's frame; the last one closes the reply."""
        self.closed = self.closed or last
        self.frames.append(frame)
        self.quiet_since = self.loop.time()
        self._wake()

    def forget(self) -> None:
        """No one follows this reply any more: its silence timer stops."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _wake(self) -> None:
        # Wake everyone waiting now; later waiters wait for the next set(). Woken waiters
        # return even though the event is cleared before they run.
        self.wakeup.set()
        self.wakeup.clear()

    async def wait(self, idle_seconds: float) -> None:
        """Until the next frame, or until the reply has been silent for idle_seconds."""
        if self.timer is None or idle_seconds < self.idle_seconds:
            self.idle_seconds = min(self.idle_seconds, idle_seconds)
            self._check_silence()
        await self.wakeup.wait()

    def _check_silence(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = None
        if self.closed:
            return
        now = self.loop.time()
        if now >= self.quiet_since + self.idle_seconds:
            self.quiet_since = now
            self._wake()  # no new frame: the followers send a heartbeat
        self.timer = self.loop.call_at(self.quiet_since + self.idle_seconds, self._check_silence)


class InProcessEventLog:
    def __init__(self) -> None:
        self._replies: dict[UUID, ReplyEvents] = {}

    async def open(self, reply_id: UUID) -> None:
        self._replies.setdefault(reply_id, ReplyEvents())

    async def append(self, reply_id: UUID, name: str, payload: object) -> None:
        events = self._replies[reply_id]
        self.add_frame(reply_id, encode_event(len(events.frames) + 1, name, payload))

    async def close(self, reply_id: UUID, name: str, payload: object) -> None:
        """Append the final event; listeners end after it. Forget the reply a while later."""
        events = self._replies[reply_id]
        self.add_frame(reply_id, encode_event(len(events.frames) + 1, name, payload), last=True)

    def frames_from(self, reply_id: UUID, event_id: int) -> list[bytes]:
        """The frames of a reply this process produces, from event `event_id` on."""
        return self._replies[reply_id].frames[event_id - 1 :]

    def add_frame(self, reply_id: UUID, frame: bytes, last: bool = False) -> None:
        """Add an encoded event (its id the next in sequence); the last one closes the reply."""
        self._replies[reply_id].add(frame, last)
        if last:
            asyncio.get_running_loop().call_later(
                settings.CHATSITE_EVENT_RETENTION_SECONDS, self._replies.pop, reply_id, None
            )

    async def follow(self, reply_id: UUID, after: int, idle_seconds: float) -> Frames | None:
        events = self._replies.get(reply_id)
        if events is None:
            return None
        return follow_events(events, after, idle_seconds)

    async def rest_of(self, reply_id: UUID, after: int) -> bytes | None:
        return None  # its followers always get the last event: they read this very log

    async def request_stop(self, reply_id: UUID, code: str = "") -> bool:
        return False  # one process: its producers are stopped directly

    def on_stop_request(self, callback: Callable[[UUID, str], None]) -> None:
        pass


async def follow_events(events: ReplyEvents, after: int, idle_seconds: float) -> Frames:
    """A reply's frames after event `after`, then live ones, with heartbeats while it is silent."""
    position = max(0, after)
    while True:
        if position < len(events.frames):
            # Everything queued goes out in one write.
            frames = events.frames[position:]
            position += len(frames)
            yield position, b"".join(frames)
            continue
        if events.closed:
            return
        await events.wait(idle_seconds)
        if position == len(events.frames) and not events.closed:
            yield position, HEARTBEAT


_event_log: EventLog | None = None


def event_log() -> EventLog:
    global _event_log
    if _event_log is None:
        if settings.REDIS_URL:
            from conversations.eventlog_redis import RedisEventLog

            _event_log = RedisEventLog(settings.REDIS_URL, settings.CHATSITE_REDIS_PREFIX)
        else:
            _event_log = InProcessEventLog()
    return _event_log
