"""The stream a browser opens right after its message POST starts on the event loop: the reply
runs in this process and the session and user come from the process's cache, so no request
thread is needed (conversations/api/stream.py, chatsite/caches.py). The cache's async methods
behave as its sync ones."""

import asyncio
import threading

from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import Client

from chatsite.asgi_handler import StreamingASGIHandler
from chatsite.caches import ProcessMemoryCache
from chatsite.request_threads import RequestThreads
from conversations.api.stream import PING
from conversations.models import Conversation, Message
from conversations.producers import PRODUCER_ID
from conversations.providers import http
from conversations.providers.registry import default_model
from conversations.relay import start_reply
from tests.client import asgi_get_scope, asgi_receive, read_events, text_of
from tests.replies import stub_job
from tests.stub import Gate, gated_stream

HANG_GUARD_SECONDS = 30  # a failure, not a timing check: the old path waits for ever


def http_scope(path: str, cookie: str = "") -> dict:
    headers = [(b"accept", b"text/event-stream")]
    if cookie:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return asgi_get_scope(path, headers)


def logged_in_session(user) -> str:
    """A session cookie for `user`, with the session and the user in the cache (a first
    request read them), as for a browser that has just posted its message."""
    browser = Client()
    browser.force_login(user)
    assert browser.get("/api/conversations/").status_code == 200
    return browser.cookies[settings.SESSION_COOKIE_NAME].value


def test_a_running_reply_streams_while_every_request_thread_is_busy(alice, stub):
    stub.reset()
    gate = Gate()
    stub.queue(gated_stream(["Hello", " there"], gate, after=["!"]))
    conversation = Conversation.objects.create(owner=alice, model=default_model().id)
    _, reply, _ = conversation.post_user_message("Hi", default_model(), None, PRODUCER_ID)
    cookie = logged_in_session(alice)
    release, busy_started = threading.Event(), asyncio.Event()
    app = app_whose_busy_path_holds_its_thread(release, busy_started)

    async def follow_while_busy() -> tuple[list[bytes], bool]:
        threads = RequestThreads(app, threads=1)
        busy = asyncio.create_task(threads(http_scope("/busy/"), asgi_receive(), no_send))
        await busy_started.wait()
        assert threads.lent == 1  # taken by the busy request's call
        await start_reply(reply, stub_job(reply, stub))
        sent: list[bytes] = []
        first_delta = asyncio.Event()

        async def send(message: dict) -> None:
            sent.append(message.get("body", b""))
            if b"event: delta" in sent[-1]:
                first_delta.set()

        path = f"/api/messages/{reply.pk}/stream/"
        stream = asyncio.create_task(threads(http_scope(path, cookie), asgi_receive(), send))
        try:
            await asyncio.wait_for(first_delta.wait(), HANG_GUARD_SECONDS)
            gate.open()
            await asyncio.wait_for(stream, HANG_GUARD_SECONDS)
            thread_still_busy = not busy.done()
        finally:
            gate.open()
            release.set()
            await busy
            await http.client().aclose()  # its kept connection must not outlive this loop
        return sent, thread_still_busy

    sent, thread_still_busy = asyncio.run(follow_while_busy())
    assert thread_still_busy
    events = list(read_events(iter(sent)))
    assert text_of(events) == "Hello there!"
    assert events[-1].name == "done"
    reply.refresh_from_db()
    assert (reply.status, reply.content) == (Message.Status.COMPLETE, "Hello there!")


def app_whose_busy_path_holds_its_thread(release: threading.Event, started: asyncio.Event):
    """chatsite's handler, but a request to /busy/ holds its request thread until `release`."""
    handler = StreamingASGIHandler()

    async def app(scope: dict, receive, send) -> None:
        if scope["path"] == "/busy/":
            started.set()
            await sync_to_async(release.wait)()  # holds the one request thread
        else:
            await handler(scope, receive, send)

    return app


async def no_send(message: dict) -> None:
    pass


def test_the_process_caches_async_methods_behave_as_its_sync_ones():
    cache = ProcessMemoryCache("test-async-methods", {})

    async def use() -> list:
        seen = [await cache.aadd("k", 1), await cache.aadd("k", 2), await cache.aget("k")]
        await cache.aset("k", 5)
        seen += [await cache.aincr("k", 2), cache.get("k"), await cache.ahas_key("k")]
        seen += [await cache.atouch("k", 60), await cache.adelete("k"), await cache.aget("k", "-")]
        cache.set("other", "x")
        await cache.aclear()
        return [*seen, cache.get("other")]

    assert asyncio.run(use()) == [True, False, 1, 7, 7, True, True, True, "-", None]


def test_a_stream_opened_before_its_reply_starts_follows_it_live(alice, stub):
    # Between the message POST storing a reply and starting its producer, a stream (or a
    # sweep) finds the reply without a producer: it waits for it, then follows it live.
    stub.reset()
    gate = Gate()
    stub.queue(gated_stream(["Hello"], gate, after=[" there"]))
    conversation = Conversation.objects.create(owner=alice, model=default_model().id)
    _, reply, _ = conversation.post_user_message("Hi", default_model(), None, PRODUCER_ID)
    cookie = logged_in_session(alice)

    async def follow_from_before_the_start() -> list[bytes]:
        threads = RequestThreads(StreamingASGIHandler(), threads=2)
        sent: list[bytes] = []
        waiting, first_delta = asyncio.Event(), asyncio.Event()

        async def send(message: dict) -> None:
            sent.append(message.get("body", b""))
            if sent[-1].startswith(PING):
                waiting.set()
            if b"event: delta" in sent[-1]:
                first_delta.set()

        path = f"/api/messages/{reply.pk}/stream/"
        stream = asyncio.create_task(threads(http_scope(path, cookie), asgi_receive(), send))
        try:
            await asyncio.wait_for(waiting.wait(), HANG_GUARD_SECONDS)  # no producer yet
            await start_reply(reply, stub_job(reply, stub))
            await asyncio.wait_for(first_delta.wait(), HANG_GUARD_SECONDS)  # before the end
            gate.open()
            await asyncio.wait_for(stream, HANG_GUARD_SECONDS)
        finally:
            gate.open()
            await http.client().aclose()  # its kept connection must not outlive this loop
        return sent

    events = list(read_events(iter(asyncio.run(follow_from_before_the_start()))))
    assert [(e.name, e.data.get("content")) for e in events[:2]] == [
        ("delta", "Hello"),
        ("delta", " there"),
    ]
    assert events[-1].name == "done"
    reply.refresh_from_db()
    assert (reply.status, reply.content) == (Message.Status.COMPLETE, "Hello there")
