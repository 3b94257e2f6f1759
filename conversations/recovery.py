"""Nothing stays "generating" forever: replies whose producer is gone are marked interrupted.

Every reply records its producer as host:pid:boot and a heartbeat. A reply is orphaned when
its producer is a process of this host (and pid namespace) that is no longer alive (or whose
pid a later process holds), or this very process, which has no such producer and has not just
created the reply (the message POST stores a reply, then starts its producer), or, on another
host, when its heartbeat is long stale. Recovery runs when a server process starts, then every
SWEEP_SECONDS in each process once it has served a stream or started a reply, and whenever a
stream finds its reply orphaned.
"""

import asyncio
import contextvars
import logging
import os
import time
from datetime import timedelta

from asgiref.sync import async_to_sync
from django.db import DatabaseError, connections
from django.utils import timezone

from conversations import producers
from conversations.background_db import in_background
from conversations.checkpoints import HEARTBEAT_EVERY_SECONDS
from conversations.completion import end_as_saved
from conversations.eventlog import event_log
from conversations.models import Message
from conversations.reply_job import asked_texts
from conversations.usage import estimated_usage

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 30.0
STOP_WAIT_SECONDS = 5.0
STALE_AFTER = timedelta(seconds=6 * HEARTBEAT_EVERY_SECONDS)
INTERRUPTED_REASON = (
    "The server stopped while this reply was being generated; the text up to then was kept."
)
_sweeper: asyncio.Task | None = None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_orphan(reply: Message) -> bool:
    if reply.producer == producers.PRODUCER_ID:
        return reply.pk not in producers.running_replies() and stale(reply)
    host, _, rest = reply.producer.partition(":")
    pid, _, boot = rest.partition(":")
    if host == producers.THIS_HOST and pid.isdigit():
        return int(pid) == os.getpid() or not pid_alive(int(pid)) or reused(int(pid), boot)
    return stale(reply)


def reused(pid: int, boot: str) -> bool:
    """Whether the live process `pid` is a later one than the producer that started at `boot`
    (a restart gave the pid out again). Not its heartbeat: a live producer may miss beats
    while the database is out of reach, and must not lose its reply then."""
    started, _, _ = boot.rpartition("-")
    now = producers.process_started(pid)
    return bool(started) and now is not None and now != started


def stale(reply: Message) -> bool:
    """No sign of life (its creation, a checkpoint) for STALE_AFTER."""
    return reply.heartbeat_at is None or reply.heartbeat_at < timezone.now() - STALE_AFTER


def recover_orphaned_replies() -> int:
    """Mark every orphaned reply interrupted; return how many."""
    active = Message.objects.active_replies().only("pk", "producer", "heartbeat_at")
    orphans = [reply.pk for reply in active if is_orphan(reply)]
    if not orphans:
        return 0
    found = Message.objects.filter(pk__in=orphans).select_related("parent")
    count = sum(end_without_producer(reply, Message.Status.INTERRUPTED) for reply in found)
    logger.warning("Marked %d orphaned replies as interrupted", count)
    return count


def end_without_producer(reply: Message, status: str, stop_code: str = "") -> bool:
    """Store `reply` as interrupted or stopped (for `stop_code`, producers.STOP_REASONS) with
    its last checkpoint and an estimate of its usage: the prompt it was asked and the text it
    saved (budgets count it)."""
    usage = estimated_usage(asked_texts(reply), [reply.content, reply.reasoning])
    if status == Message.Status.INTERRUPTED:
        why = ("interrupted", INTERRUPTED_REASON)
    else:
        why = (stop_code, producers.STOP_REASONS.get(stop_code, ""))
    return end_as_saved(reply, status, why, usage)


def recover_at_startup() -> None:
    try:
        recover_orphaned_replies()
    except DatabaseError:
        logger.warning("Could not check for interrupted replies (is the database migrated?)")
    finally:
        connections.close_all()  # this thread becomes the event loop's: it keeps none


def stop_reply_now(reply: Message, code: str = "") -> None:
    """Stop a running reply wherever it is produced, and return once it is stored; `code` (of
    producers.STOP_REASONS) says why when it is not its owner's own Stop."""
    if async_to_sync(producers.stop_reply)(reply.id, code):
        return
    if reply.producer == producers.PRODUCER_ID and not stale(reply):
        # Stored here moments ago and not started yet (its message POST is between the two):
        # it starts stopped, or, started meanwhile, is stopped now.
        producers.stop_before_start(reply.id, code)
        stopped = async_to_sync(producers.stop_reply)(reply.id, code)
        stopped = stopped or _wait_until_final(reply)
        producers.forget_stop_before_start(reply.id)  # used, or not needed (it ended)
        if stopped:
            return
    elif is_orphan(reply):
        end_without_producer(reply, Message.Status.INTERRUPTED)
        return
    if async_to_sync(event_log().request_stop)(reply.id, code) and _wait_until_final(reply):
        return
    # Produced by a live process that did not answer: store what it last saved.
    saved = Message.objects.select_related("parent").filter(pk=reply.pk).first()
    if saved and end_without_producer(saved, Message.Status.STOPPED, code):
        logger.warning("Reply %s: its producer did not answer a stop; stored as saved", reply.pk)


def _wait_until_final(reply: Message) -> bool:
    """Wait (bounded) for another process to store the reply it was asked to stop."""
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while time.monotonic() < deadline:
        if not Message.objects.active_replies().filter(pk=reply.pk).exists():
            return True
        time.sleep(0.02)
    return False


def ensure_background_tasks() -> None:
    """Start this process's periodic sweep and stop listener once, from the running loop."""
    global _sweeper
    if _sweeper is None or _sweeper.done():
        # A fresh context: inheriting the request's would tie the sweep's database calls
        # to that request's thread executor, which is gone once the request ends.
        _sweeper = asyncio.get_running_loop().create_task(
            _sweep_forever(), context=contextvars.Context()
        )
        event_log().on_stop_request(producers.stop_if_produced_here)


async def _sweep_forever() -> None:
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        try:
            await in_background(recover_orphaned_replies)()
        except DatabaseError:
            logger.exception("Sweeping for orphaned replies failed")
