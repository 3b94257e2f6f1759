"""What lets an open stream go on, re-checked while it is open: its API key or its session.

A stream checks its caller once, when it opens, and a reply can run for minutes. Each watch
re-reads every credential its process's open streams use, in one query (sessions: two) per
process every interval: a query per stream per interval was a fifth of a worker's CPU at
1,000 streams, and grew as a slow worker's streams lasted longer. A stream looks its own
credential up in `ended` per frame (heartbeats come at least once per interval:
stream_heartbeat_seconds).

An API key's stream ends once the key is revoked or its user deactivated (apikeys.py). A
session's stream ends once the session does (logged out, expired, or its user's password
changed elsewhere) or its user is deactivated: a reply's stream simply closes, and the
browser's reconnect is refused, as every other request of that session is; a /v1 completion
asked for with a session ends with SESSION_ENDED_EVENT and stops its reply, as a revoked
key's does (no one can resume it).
"""

import asyncio
import contextlib
import contextvars
import json
import logging
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Hashable, Iterator
from importlib import import_module
from typing import NamedTuple

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from conversations.background_db import in_background
from conversations.models import ApiKey

logger = logging.getLogger(__name__)
PER_QUERY = 500  # credentials per query: well under SQLite's limit on a statement's parameters


class OpenCredentials[T: Hashable]:
    """The credentials of this process's open streams of one kind, re-read together."""

    def __init__(self, still_valid: Callable[[list[T]], set[T]], setting: str) -> None:
        # Which of these (at most PER_QUERY) may still be used: sync, a query or two.
        self._still_valid = still_valid
        self._setting = setting  # the setting that says how often, in seconds
        self._streams: Counter[T] = Counter()  # credential -> streams open with it here
        self.ended: set[T] = set()
        self._task: asyncio.Task | None = None

    @contextlib.contextmanager
    def watching(self, credential: T) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        if self._task is not None and self._task.get_loop() is not loop:  # a new loop (tests)
            with contextlib.suppress(RuntimeError):  # that loop may be closed: its task is over
                self._task.get_loop().call_soon_threadsafe(self._task.cancel)
            self._streams, self.ended, self._task = Counter(), set(), None
        self._streams[credential] += 1
        if self._task is None or self._task.done():
            # A fresh context: the watch outlives the request whose stream started it.
            self._task = loop.create_task(self._watch(), context=contextvars.Context())
        try:
            yield
        finally:
            self._streams[credential] -= 1
            if self._streams[credential] <= 0:  # below 0: opened on a loop since replaced
                del self._streams[credential]
                self.ended.discard(credential)

    async def _watch(self) -> None:
        while self._streams:
            await asyncio.sleep(getattr(settings, self._setting))
            watched = list(self._streams)
            try:
                valid = await in_background(self._valid_among)(watched)
            except Exception:  # a busy database must not end the watch for every stream
                logger.exception("Re-checking %d open streams failed; retrying", len(watched))
                continue
            self.ended = {credential for credential in watched if credential not in valid}

    def _valid_among(self, watched: list[T]) -> set[T]:
        chunks = (watched[start : start + PER_QUERY] for start in range(0, len(watched), PER_QUERY))
        return set().union(*map(self._still_valid, chunks))


async def until_ended[T: Hashable](
    frames: AsyncGenerator[bytes],
    watch: OpenCredentials[T],
    credential: T,
    on_end: Callable[[], None] | None = None,
    last_frame: bytes = b"",
) -> AsyncGenerator[bytes]:
    """Pass a stream's frames on; once its credential no longer lets it go on, call
    `on_end`, send `last_frame` (if any) and end."""
    with watch.watching(credential):
        async with contextlib.aclosing(frames):
            async for frame in frames:
                if credential in watch.ended:
                    if on_end is not None:
                        on_end()
                    if last_frame:
                        yield last_frame
                    return
                yield frame


def stream_heartbeat_seconds(key: ApiKey | None) -> float:
    """A stream sends a heartbeat at least as often as its key or session is re-checked."""
    if key is None:
        recheck = settings.CHATSITE_SESSION_RECHECK_SECONDS
    else:
        recheck = settings.CHATSITE_API_KEY_RECHECK_SECONDS
    return min(settings.CHATSITE_HEARTBEAT_SECONDS, recheck)


class OpenSession(NamedTuple):
    session_key: str
    user_id: object
    auth_hash: str  # the user's session hash when the stream opened (it follows the password)


def open_session(session_key: str, user: AbstractBaseUser) -> OpenSession:
    return OpenSession(session_key, user.pk, user.get_session_auth_hash())


def live_sessions(sessions: list[OpenSession]) -> set[OpenSession]:
    """Which of `sessions` still log their user in: stored and unexpired, the user active,
    and the user's password still the one the stream opened with."""
    session_model = import_module(settings.SESSION_ENGINE).SessionStore.get_model_class()
    stored = set(
        session_model.objects.filter(
            session_key__in=[s.session_key for s in sessions], expire_date__gt=timezone.now()
        ).values_list("session_key", flat=True)
    )
    active = get_user_model().objects.filter(pk__in={s.user_id for s in sessions}, is_active=True)
    users = {user.pk: user for user in active.only("pk", "password")}
    return {
        s
        for s in sessions
        if s.session_key in stored
        and (user := users.get(s.user_id)) is not None
        and constant_time_compare(user.get_session_auth_hash(), s.auth_hash)
    }


open_sessions = OpenCredentials(live_sessions, "CHATSITE_SESSION_RECHECK_SECONDS")


def credential_ended_event(code: str, message: str) -> bytes:
    """The last event of a stream whose key or session no longer lets it go on. No `id:`
    line: it must not move a client's Last-Event-ID."""
    data = json.dumps({"error": {"code": code, "message": message}})
    return f"event: error\ndata: {data}\n\n".encode()


SESSION_ENDED_MESSAGE = "The session ended: log in again."
SESSION_ENDED_EVENT = credential_ended_event("session_ended", SESSION_ENDED_MESSAGE)
