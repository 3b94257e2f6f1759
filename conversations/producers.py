"""This process's running producers (relay.py), by reply: found, stopped, cancelled at exit.

A stop can also come before its reply's producer exists (stop before start): the message POST
stores a reply, then starts it, and a stop that finds it in between marks it, so it starts
stopped and its provider is never asked. A stop taken by another process reaches every process
through the event log (stop_if_produced_here) and marks the reply the same way.
"""

import asyncio
import contextvars
import hashlib
import os
import socket
import threading
import uuid
from pathlib import Path
from typing import Protocol
from uuid import UUID

from django.conf import settings

from conversations.models import Message


def this_host() -> str:
    """This machine as crash recovery tells machines apart (host_id)."""
    return host_id(socket.gethostname(), _read("/proc/sys/kernel/random/boot_id"), _pid_namespace())


def host_id(hostname: str, boot_id: str, pid_namespace: str) -> str:
    """Its name, cut to stay readable, and a digest of the whole name, the machine's boot and
    its pid namespace: long pod names differing only at their end, machines given one name and
    containers of one host name (each with its own pids) are told apart, as recovery must: a
    reply of a live process taken for an orphan would be marked interrupted."""
    whole = "|".join((hostname, boot_id, pid_namespace))
    return f"{hostname[:32]}@{hashlib.sha256(whole.encode()).hexdigest()[:12]}"


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:  # no /proc (macOS)
        return ""


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def process_started(pid: int) -> str | None:
    """When process `pid` started (clock ticks after boot): a later process given the same
    pid started later. None where /proc cannot say (no such process, macOS)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]  # field 22, counted after the command's name


# host:pid:boot, the boot being when the process started (where known) and a nonce: which
# process produces a reply, stored with it for crash recovery.
_boot = "-".join(filter(None, [process_started(os.getpid()), uuid.uuid4().hex[:8]]))
THIS_HOST = this_host()  # read once: recovery compares every running reply's with it
PRODUCER_ID = f"{THIS_HOST}:{os.getpid()}:{_boot}"

CLIENT_GONE = (
    "The API client disconnected before the reply was complete; the text up to then is kept."
)
TOO_LONG = "too_long"


def too_long_reason() -> str:
    limit = settings.CHATSITE_REPLY_MAX_SECONDS
    after = f"{limit / 60:g} minutes" if limit >= 60 else f"{limit:g} seconds"
    return (
        f"The reply was stopped after {after}, this site's limit"
        " (CHATSITE_REPLY_MAX_SECONDS); the text up to then is kept."
    )


# Why an OpenAI-compatible client's stream was cut while its reply ran, by the code stored.
CREDENTIAL_ENDED = {
    "key_revoked": (
        "The API key was revoked before the reply was complete; the text up to then is kept."
    ),
    "session_ended": (
        "The session that asked for the reply ended (a logout, a password change, the account"
        " deactivated) before it was complete; the text up to then is kept."
    ),
}


# Why a reply was stopped by someone other than its owner's Stop, by the code stored with it:
# what another window following it reads. A stop passed between processes carries the code.
CONVERSATION_DELETED = "conversation_deleted"
STOP_REASONS = {
    "client_disconnected": CLIENT_GONE,
    **CREDENTIAL_ENDED,
    CONVERSATION_DELETED: "The conversation was deleted while this reply was being written.",
}


class Producer(Protocol):
    """What the registry needs of relay.ReplyProducer."""

    reply: Message
    finished: asyncio.Event

    def cancel(self, code: str = "", reason: str = "") -> None: ...

    async def run(self) -> None: ...


_producers: dict[UUID, Producer] = {}
# Set as the server begins to shut down, before it cuts its open requests (chatsite/asgi.py).
shutting_down = threading.Event()
_tasks: set[asyncio.Task] = set()
_stopped_before_start: dict[UUID, str] = {}  # reply -> the stop's code
# Stops passed on by other processes for replies not produced here. Most are for other
# processes' replies: only the latest are kept, far more than can be between a store and a start.
STOPS_FROM_ELSEWHERE_KEPT = 1000
_stops_from_elsewhere: dict[UUID, str] = {}


def run_detached(producer: Producer) -> None:
    """Register `producer` and run it as a task no request owns."""
    reply_id = producer.reply.pk
    # Checked and registered in one turn of the loop: a stop comes before or finds it.
    here = _stopped_before_start.pop(reply_id, None)
    elsewhere = _stops_from_elsewhere.pop(reply_id, None)
    if here is not None or elsewhere is not None:
        _cancel(producer, here or elsewhere or "")
    _producers[reply_id] = producer
    # A fresh context: the request's would tie the producer's database calls to the request's
    # thread, which is given back when the request ends.
    task = asyncio.get_running_loop().create_task(producer.run(), context=contextvars.Context())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def _cancel(producer: Producer, code: str = "") -> None:
    """Stop `producer`'s reply, storing `code` and its reason (none: its owner's own Stop)."""
    producer.cancel(code, STOP_REASONS.get(code, ""))


def unregister(reply_id: UUID) -> None:
    """The producer of `reply_id` has stored its reply."""
    _producers.pop(reply_id, None)


def running_replies() -> set[UUID]:
    return set(_producers)


def running_producers() -> list[Producer]:
    return list(_producers.values())


def running_reply(reply_id: UUID) -> Message | None:
    """A reply this process is producing, whoever owns it (access.running_reply_for_user)."""
    producer = _producers.get(reply_id)
    return producer.reply if producer is not None else None


async def stop_reply(reply_id: UUID, code: str = "") -> bool:
    """Stop a reply produced by this process and wait until it is stored; False if not ours.
    `code` (of STOP_REASONS) is stored with it, and its reason, when the stop is not its
    owner's own Stop."""
    producer = _producers.get(reply_id)
    if producer is None:
        return False
    _cancel(producer, code)
    await producer.finished.wait()
    return True


def stop_before_start(reply_id: UUID, code: str = "") -> None:
    """A stop for a reply this process stored but has not started: it starts stopped (with
    `code`), its provider not asked."""
    _stopped_before_start[reply_id] = code


def forget_stop_before_start(reply_id: UUID) -> None:
    """Drop the mark stop_before_start() left, once the reply is stored or given up."""
    _stopped_before_start.pop(reply_id, None)


def stop_for_client_gone(reply_id: UUID) -> None:
    """An OpenAI-compatible client disconnected: its reply stops, as OpenAI's does (it cannot
    be resumed, and generating on costs tokens), stored with its text so far and why. Not when
    the server cut it, shutting down: the reply is stored as interrupted then (shutdown.py)."""
    if not shutting_down.is_set() and (producer := _producers.get(reply_id)):
        _cancel(producer, "client_disconnected")


def stop_for_credential_ended(reply_id: UUID, code: str) -> None:
    """An OpenAI-compatible client's key was revoked, or its session ended, mid-reply (`code`,
    a key of CREDENTIAL_ENDED): its stream ends, and no one can resume it, so the reply stops
    as when the client leaves."""
    if producer := _producers.get(reply_id):
        _cancel(producer, code)


def stop_if_produced_here(reply_id: UUID, code: str = "") -> None:
    """A stop request from another process (through the event log): act if the reply is ours,
    or remember it, in case the reply was stored here and is about to start."""
    if producer := _producers.get(reply_id):
        _cancel(producer, code)
        return
    _stops_from_elsewhere[reply_id] = code
    if len(_stops_from_elsewhere) > STOPS_FROM_ELSEWHERE_KEPT:
        del _stops_from_elsewhere[next(iter(_stops_from_elsewhere))]  # the oldest


def cancel_producers() -> None:
    """At exit, their loop stopped and their replies stored (shutdown.py): ended without a
    final write of their own, not failed by connections closed on the way out."""
    stopped: dict[asyncio.AbstractEventLoop, list[asyncio.Task]] = {}
    for task in list(_tasks):
        loop = task.get_loop()
        if not loop.is_running() and not loop.is_closed():
            task.cancel()  # all of them before any runs again
            stopped.setdefault(loop, []).append(task)
    for loop, tasks in stopped.items():
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
