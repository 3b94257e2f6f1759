"""Requests borrow a kept thread for their sync work (chatsite/request_threads.py): each
request still has one thread to itself, threads are reused instead of started per request,
and a thread still busy for a finished request is never lent to the next one."""

import asyncio
import threading

from asgiref.sync import sync_to_async

from chatsite.request_threads import RequestThreads

HTTP = {"type": "http"}


async def no_receive() -> dict:
    return {"type": "http.disconnect"}


async def no_send(message: dict) -> None:
    pass


class ThreadRecorder:
    """An ASGI app whose requests note the thread of each thread-sensitive sync call."""

    def __init__(self, calls_per_request: int = 2) -> None:
        self.calls_per_request = calls_per_request
        self.threads: list[list[int]] = []
        self.entered: asyncio.Queue[None] = asyncio.Queue()
        self.release = asyncio.Event()
        self.hold = False

    async def __call__(self, scope: dict, receive, send) -> None:
        seen: list[int] = []
        self.threads.append(seen)
        for _ in range(self.calls_per_request):
            seen.append(await sync_to_async(threading.get_ident)())
            if self.hold:
                self.entered.put_nowait(None)
                await self.release.wait()


def test_one_request_runs_all_its_sync_work_on_one_thread():
    app = ThreadRecorder(calls_per_request=3)
    asyncio.run(RequestThreads(app)(HTTP, no_receive, no_send))
    [seen] = app.threads
    assert len(set(seen)) == 1
    assert seen[0] != threading.get_ident()  # not on the event loop's thread


def test_a_later_request_reuses_the_thread_instead_of_starting_one():
    app = ThreadRecorder()
    threads = RequestThreads(app)

    async def two_in_a_row() -> None:
        await threads(HTTP, no_receive, no_send)
        await threads(HTTP, no_receive, no_send)

    asyncio.run(two_in_a_row())
    first, second = app.threads
    assert first[0] == second[0]
    assert len(threads.idle) == 1


def test_overlapping_requests_each_get_a_thread_of_their_own():
    app = ThreadRecorder(calls_per_request=1)
    app.hold = True
    threads = RequestThreads(app)

    async def overlapping() -> None:
        first = asyncio.create_task(threads(HTTP, no_receive, no_send))
        await app.entered.get()  # the first request is in the middle of its work
        second = asyncio.create_task(threads(HTTP, no_receive, no_send))
        await app.entered.get()
        app.release.set()
        await asyncio.gather(first, second)

    asyncio.run(overlapping())
    (first,), (second,) = app.threads
    assert first != second
    assert len(threads.idle) == 2


def test_a_thread_still_busy_after_its_request_ended_is_not_lent_again():
    started, finish = threading.Event(), threading.Event()

    def slow_sync_work() -> None:
        started.set()
        finish.wait(10)

    async def app(scope: dict, receive, send) -> None:
        await sync_to_async(slow_sync_work)()

    threads = RequestThreads(app)

    async def cancelled_request() -> None:
        request = asyncio.create_task(threads(HTTP, no_receive, no_send))
        await asyncio.to_thread(started.wait, 10)
        request.cancel()  # the client went away; the sync call runs on in its thread
        await asyncio.gather(request, return_exceptions=True)

    try:
        asyncio.run(cancelled_request())
        assert threads.idle == []
    finally:
        finish.set()


def test_websocket_and_lifespan_scopes_pass_straight_through():
    received = []

    async def app(scope: dict, receive, send) -> None:
        received.append(scope["type"])

    asyncio.run(RequestThreads(app)({"type": "lifespan"}, no_receive, no_send))
    assert received == ["lifespan"]
