"""Checkpoints: the partial text of every running reply in this process, saved together.

One loop per process writes every reply that changed since the last tick in one transaction,
every CHATSITE_CHECKPOINT_SECONDS, so a killed process loses at most one interval. A
transaction per reply per tick put hundreds of small commits a second on the one database
thread. A reply's first token is saved soon after it arrives (CHATSITE_FIRST_TOKEN_SAVE_SECONDS),
so the reply shows as streaming; the first tokens arriving meanwhile are saved with it, and a
reply that ends before then is written only once, by the completion hook. A reply the tick
finds already final (stopped by a process that could not reach this one, or given up by crash
recovery) is no longer read from its provider.
"""

import asyncio
import contextlib
import contextvars
import logging
from typing import Protocol
from uuid import UUID

from django.conf import settings

from conversations.background_db import in_background
from conversations.completion import PartialReply, checkpoint_replies

logger = logging.getLogger(__name__)

# A reply with no new text still gets its heartbeat saved this often (crash recovery on other
# hosts reads it).
HEARTBEAT_EVERY_SECONDS = 10.0


class RunningReply(Protocol):
    reply_id: UUID

    def progress(self) -> tuple[int, bool]:
        """A cheap marker that changes whenever the partial reply does."""

    def partial(self) -> PartialReply: ...

    def cancel(self) -> None:
        """Stop reading the provider."""


class _Tracked:
    __slots__ = ("reply", "saved", "saved_at")

    def __init__(self, reply: RunningReply, now: float) -> None:
        self.reply = reply
        self.saved = reply.progress()
        self.saved_at = now


class CheckpointLoop:
    def __init__(self) -> None:
        self._tracked: dict[UUID, _Tracked] = {}
        self._newly_streaming: set[UUID] = set()
        self._first_tokens = asyncio.Event()
        self._task: asyncio.Task | None = None

    def track(self, reply: RunningReply) -> None:
        loop = asyncio.get_running_loop()
        if self._task is not None and self._task.get_loop() is not loop:
            # A new event loop (tests): nothing of the old one carries over.
            self._tracked, self._newly_streaming = {}, set()
            self._first_tokens, self._task = asyncio.Event(), None
        self._tracked[reply.reply_id] = _Tracked(reply, loop.time())
        if self._task is None or self._task.done():
            # A fresh context: the loop outlives the request that started the first reply.
            self._task = loop.create_task(self._run(), context=contextvars.Context())

    def untrack(self, reply_id: UUID) -> None:
        self._tracked.pop(reply_id, None)
        self._newly_streaming.discard(reply_id)

    def first_token(self, reply_id: UUID) -> None:
        self._newly_streaming.add(reply_id)
        self._first_tokens.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time() + settings.CHATSITE_CHECKPOINT_SECONDS
        while self._tracked:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._first_tokens.wait(), next_tick - loop.time())
            if self._first_tokens.is_set() and loop.time() < next_tick:
                gather = min(settings.CHATSITE_FIRST_TOKEN_SAVE_SECONDS, next_tick - loop.time())
                await asyncio.sleep(gather)  # more first tokens, or replies that end meanwhile
            self._first_tokens.clear()
            if loop.time() >= next_tick:
                next_tick = loop.time() + settings.CHATSITE_CHECKPOINT_SECONDS
                due = self._changed_or_silent(loop.time())
            else:  # woken by first tokens: only those replies, not a scan of every one
                due = [self._tracked[i] for i in self._newly_streaming if i in self._tracked]
            self._newly_streaming.clear()
            await self._save(due)

    def _changed_or_silent(self, now: float) -> list[_Tracked]:
        """Every reply that changed since its last save, or is due a heartbeat."""
        return [
            tracked
            for tracked in self._tracked.values()
            if tracked.reply.progress() != tracked.saved
            or now - tracked.saved_at >= HEARTBEAT_EVERY_SECONDS
        ]

    async def _save(self, due: list[_Tracked]) -> None:
        if not due:
            return
        # What is saved, and the marker it is saved at, taken together before any await.
        saving = [(tracked, tracked.reply.progress(), tracked.reply.partial()) for tracked in due]
        try:
            ended = await in_background(checkpoint_replies)([partial for *_, partial in saving])
        except Exception:  # a busy database must not end checkpoints for every reply
            logger.exception("Saving %d checkpoints failed; retrying next tick", len(saving))
            return
        now = asyncio.get_running_loop().time()
        for tracked, progress, _ in saving:
            tracked.saved, tracked.saved_at = progress, now
        for reply_id in ended:
            # Stored as final elsewhere (or deleted): reading on would only bill for text no
            # one can store. The producer's own final write is then refused (but for a whole
            # reply over recovery's interrupted: completion.take_back).
            if tracked := self._tracked.get(reply_id):
                tracked.reply.cancel()


checkpoint_loop = CheckpointLoop()
