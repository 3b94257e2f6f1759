"""GET /api/messages/{id}/stream/: a reply as Server-Sent Events, live or finished.

The view follows the reply's event log from Last-Event-ID (or ?last_event_id=), so a
reconnecting EventSource gets exactly the events it missed. It never starts or repeats a
generation; finding its reply running with no producer left, it has crash recovery mark it
interrupted (recovery.py) and sends that. A connection is closed after
CHATSITE_STREAM_MAX_SECONDS so no proxy cuts it first; the browser reconnects and resumes.

An open stream holds no thread and no database connection: request threads are lent only
while sync calls run, and each is given back like a request that ended, its connection closed
unless it is a kept one (chatsite/request_threads.py). Django would otherwise keep both until
the response ends, minutes later.
"""

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from uuid import UUID

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.views.decorators.csrf import csrf_exempt

from conversations.access import get_for_user, running_reply_for_user
from conversations.api.serializers import message_data
from conversations.apikeys import (
    WWW_AUTHENTICATE,
    bearer_secret,
    stream_caller,
    until_revoked,
)
from conversations.eventlog import (
    HEARTBEAT,
    EventLogUnavailable,
    Frames,
    encode_event,
    event_log,
)
from conversations.models import ApiKey, Message
from conversations.recovery import ensure_background_tasks, is_orphan, recover_orphaned_replies
from conversations.stream_watch import (
    open_session,
    open_sessions,
    stream_heartbeat_seconds,
    until_ended,
)


@csrf_exempt  # a JSON 405 for other methods, not CSRF's HTML page: GET changes nothing
async def reply_stream(request: HttpRequest, message_id: UUID) -> HttpResponse:
    if request.method != "GET":
        message = f"{request.method} is not allowed: a stream is read with GET."
        response = json_error(405, "method_not_allowed", message)
        response["Allow"] = "GET"
        return response
    # The caller and the reply: on the event loop for a reply running here (the stream a
    # browser opens right after its message POST), else in one trip to the request's thread.
    # This precedes every first token, and each trip is a thread hop each way.
    found = await running_reply_for_session(request, message_id) or await sync_to_async(
        caller_and_reply
    )(request, message_id)
    if isinstance(found, HttpResponse):
        return found
    reply, user, api_key = found
    ensure_background_tasks()
    # A page's script hears pings; an API key's client keeps the comments it always had.
    heartbeat = PING if api_key is None else HEARTBEAT
    heartbeat_seconds = stream_heartbeat_seconds(api_key)
    frames = reply_events(reply.pk, last_event_id(request), heartbeat_seconds, heartbeat=heartbeat)
    if api_key is not None:
        frames = until_revoked(frames, api_key.pk)  # revoking a key ends its open streams
    else:  # as does the end of a session: a logout elsewhere, a deactivated user
        frames = until_ended(frames, open_sessions, open_session(request.session.session_key, user))
    response = EventStreamResponse(frames, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


class EventStreamResponse(StreamingHttpResponse):
    """A stream of SSE frames, already bytes: sent as they come, without the two generators
    Django wraps around every streaming response's parts to turn them into bytes."""

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterator


async def running_reply_for_session(
    request: HttpRequest, message_id: UUID
) -> tuple[Message, AbstractBaseUser, None] | None:
    """A reply running in this process, followed by its owner's session; None for anything
    else. The session and the user come from the cache, which answers on the loop
    (chatsite/caches.py, chatsite/redis_cache.py); a miss reads the database in a thread, as
    Django does."""
    if bearer_secret(request.headers.get("Authorization", "")) is not None:
        return None  # an API key: looked up in the database
    user = await request.auser()
    reply = running_reply_for_user(user, message_id) if user.is_authenticated else None
    return (reply, user, None) if reply is not None else None


def caller_and_reply(
    request: HttpRequest, message_id: UUID
) -> tuple[Message, AbstractBaseUser, ApiKey | None] | JsonResponse:
    """The reply the caller may follow, the caller, and the API key it came with; or the
    error to send."""
    user, api_key = stream_caller(request)  # a Bearer API key, else the session
    if user is None:
        response = json_error(401, "not_authenticated", "Log in or send a valid API key.")
        response["WWW-Authenticate"] = WWW_AUTHENTICATE  # as the other API views say
        return response
    try:
        # A reply running here is known with its owner; others are looked up.
        reply = running_reply_for_user(user, message_id) or get_for_user(Message, user, message_id)
    except Http404:  # JSON like every other API error, not the HTML page
        return json_error(404, "not_found", "Not found.")
    if reply.role != Message.Role.ASSISTANT:
        return json_error(400, "not_a_reply", "Only a reply has a stream.")
    return reply, user, api_key


# EventSource waits this long before reconnecting (its default is about 3 s).
RETRY_HINT = b"retry: 1000\n\n"
# A session's stream's heartbeat: an event, not a comment, so a page's script hears it and
# knows a silent connection from a silent model (EventSource hands scripts no comments).
PING = b"event: ping\ndata: {}\n\n"


def last_event_id(request: HttpRequest) -> int:
    """The last event the client has; anything but an id we could have sent: none (0)."""
    value = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id") or "0"
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else 0


async def reply_events(
    reply_id: UUID,
    after: int,
    heartbeat_seconds: float,
    max_seconds: float | None = None,
    heartbeat: bytes = HEARTBEAT,
) -> AsyncGenerator[bytes]:
    """The reply's frames after event `after`, for at most max_seconds (default:
    CHATSITE_STREAM_MAX_SECONDS), each heartbeat sent as `heartbeat`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (max_seconds or settings.CHATSITE_STREAM_MAX_SECONDS)
    yield RETRY_HINT
    try:
        live = await event_log().follow(reply_id, after, heartbeat_seconds)
    except EventLogUnavailable:
        live = None  # the stored state, read from the database, is all there is
    frames = live if live is not None else stored_reply_events(reply_id, after, heartbeat_seconds)
    # While silent, the reply is read back at most every CHATSITE_HEARTBEAT_SECONDS, however
    # often heartbeats come (as often as the stream's key or session is re-checked).
    next_check = loop.time() + settings.CHATSITE_HEARTBEAT_SECONDS
    async with contextlib.aclosing(frames):
        async for last_id, frame in frames:
            if frame is HEARTBEAT:
                if loop.time() >= next_check:
                    next_check = loop.time() + settings.CHATSITE_HEARTBEAT_SECONDS
                    if ended := await ended_without_log(reply_id, last_id):
                        yield ended  # the rest from the log after all, or the stored state
                        return
                frame = heartbeat
            yield frame
            if loop.time() >= deadline:
                return  # EventSource reconnects with Last-Event-ID and resumes


async def ended_without_log(reply_id: UUID, last_id: int) -> bytes | None:
    """While a stream idles, check that its reply is still running; if not, its final frames."""
    reply = await Message.objects.filter(pk=reply_id).afirst()
    if reply is not None and reply.is_active and is_orphan(reply):
        await database_sync_to_async(recover_orphaned_replies)()
        reply = await Message.objects.filter(pk=reply_id).afirst()
    if reply is None or reply.is_active:
        return None
    # The log may have the rest after all (a reader behind, or events Redis missed and got
    # with the end); else the stored state is all there is.
    if (rest := await event_log().rest_of(reply_id, last_id)) is not None:
        return rest
    return await database_sync_to_async(final_frames)(reply, last_id)


async def stored_reply_events(reply_id: UUID, after: int, heartbeat_seconds: float) -> Frames:
    """A reply no event log knows: its stored state, waiting while it runs elsewhere, or its
    live events once its log opens (a reply whose producer was still starting)."""
    while True:
        reply = await Message.objects.filter(pk=reply_id).afirst()
        if reply is None:
            return
        if not reply.is_active:
            yield after, await database_sync_to_async(final_frames)(reply, after)
            return
        if is_orphan(reply):
            await database_sync_to_async(recover_orphaned_replies)()
            continue
        with contextlib.suppress(EventLogUnavailable):
            if (live := await event_log().follow(reply_id, after, heartbeat_seconds)) is not None:
                async with contextlib.aclosing(live):
                    async for after, frame in live:  # `after`: where to go on from
                        yield after, frame
                return
        yield after, HEARTBEAT
        # As often as the log's followers beat: a page takes a longer silence for a dead line.
        await asyncio.sleep(min(settings.CHATSITE_CHECKPOINT_SECONDS, heartbeat_seconds))


def final_frames(reply: Message, after: int) -> bytes:
    """A finished reply in one go: its text (for a client starting afresh), then done or error."""
    frames = []
    event_id = after
    if after == 0:
        if reply.reasoning:
            event_id += 1
            frames.append(encode_event(event_id, "reasoning", {"content": reply.reasoning}))
        if reply.content:
            event_id += 1
            frames.append(encode_event(event_id, "delta", {"content": reply.content}))
    payload = message_data(reply)
    if reply.status == Message.Status.FAILED:
        error = {"code": reply.error_code, "message": reply.error}
        frames.append(encode_event(event_id + 1, "error", {"error": error, "message": payload}))
    else:
        frames.append(encode_event(event_id + 1, "done", {"message": payload}))
    return b"".join(frames)


def json_error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)
