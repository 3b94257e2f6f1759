"""Requests' sync work runs on kept threads, lent while it runs (chatsite/request_threads.py):
threads are reused instead of started per request, a request that waits holds none unless it
asked to keep one, sync calls that overlap never share one, and a thread still busy for a
finished request is never lent; past the limit calls wait, reads first, and a held thread is
not counted."""

import asyncio
import threading

from asgiref.sync import sync_to_async

from chatsite.request_threads import RequestThreads, hold_request_thread

HTTP = {"type": "http", "method": "GET"}
THREADS = 4  # more than any test here needs at once; the site's own comes from settings
HANG_GUARD_SECONDS = 10  # not a timing: a request that never gets a thread fails, not hangs


async def no_receive() -> dict:
    return {"type": "http.disconnect"}


async def no_send(message: dict) -> None:
    pass


class ThreadRecorder:
    """An ASGI app whose requests note the thread of each thread-sensitive sync call, and may
    wait between calls (as a stream waits for tokens) until released."""

    def __init__(self, calls_per_request: int = 2, hold: bool = False) -> None:
        self.calls_per_request = calls_per_request
        self.hold_thread = hold
        self.threads: list[list[int]] = []
        self.waiting: asyncio.Queue[None] = asyncio.Queue()
        self.release = asyncio.Event()
        self.hold = False

    async def __call__(self, scope: dict, receive, send) -> None:
        seen: list[int] = []
        self.threads.append(seen)
        if self.hold_thread:
            hold_request_thread()
        for _ in range(self.calls_per_request):
            seen.append(await sync_to_async(threading.get_ident)())
            if self.hold:
                self.waiting.put_nowait(None)
                await self.release.wait()


def test_a_requests_sync_calls_run_on_a_kept_thread_not_the_loops():
    app = ThreadRecorder(calls_per_request=3)
    threads = RequestThreads(app, THREADS)
    asyncio.run(threads(HTTP, no_receive, no_send))
    [seen] = app.threads
    assert len(set(seen)) == 1
    assert seen[0] != threading.get_ident()
    assert len(threads.idle) == 1  # given back, kept for the next request


def test_a_later_request_reuses_the_thread_instead_of_starting_one():
    app = ThreadRecorder()
    threads = RequestThreads(app, THREADS)

    async def two_in_a_row() -> None:
        await threads(HTTP, no_receive, no_send)
        await threads(HTTP, no_receive, no_send)

    asyncio.run(two_in_a_row())
    first, second = app.threads
    assert first[0] == second[0]
    assert len(threads.idle) == 1


def run_two_where_the_first_waits(app: ThreadRecorder, threads: RequestThreads) -> None:
    app.hold = True

    async def one_waits_while_another_works() -> None:
        first = asyncio.create_task(threads(HTTP, no_receive, no_send))
        await app.waiting.get()  # the first request's sync call is done; it waits
        second = asyncio.create_task(threads(HTTP, no_receive, no_send))
        await app.waiting.get()
        app.release.set()
        await asyncio.gather(first, second)

    asyncio.run(one_waits_while_another_works())


def test_a_waiting_request_holds_no_thread():
    app = ThreadRecorder(calls_per_request=1)
    threads = RequestThreads(app, THREADS)
    run_two_where_the_first_waits(app, threads)
    (first,), (second,) = app.threads
    assert first == second  # the waiting request's thread was free to lend
    assert len(threads.idle) == 1


def test_a_request_that_holds_its_thread_keeps_it_while_it_waits():
    app = ThreadRecorder(calls_per_request=2, hold=True)
    threads = RequestThreads(app, THREADS)
    run_two_where_the_first_waits(app, threads)
    first, second = app.threads
    assert len(set(first)) == 1  # both of its calls on one thread
    assert not set(first) & set(second)  # not lent to the other request meanwhile
    assert len(threads.idle) == 2


def test_sync_calls_that_overlap_each_get_a_thread():
    both_running = threading.Barrier(2, timeout=10)

    def meet() -> int:
        both_running.wait()  # returns only while the other request's call runs too
        return threading.get_ident()

    seen = []

    async def app(scope: dict, receive, send) -> None:
        seen.append(await sync_to_async(meet)())

    threads = RequestThreads(app, THREADS)

    async def overlapping() -> None:
        await asyncio.gather(*(threads(HTTP, no_receive, no_send) for _ in range(2)))

    asyncio.run(overlapping())
    assert len(set(seen)) == 2
    assert len(threads.idle) == 2


def test_a_thread_still_busy_after_its_request_ended_is_not_lent_again():
    started, finish = threading.Event(), threading.Event()

    def slow_sync_work() -> None:
        started.set()
        finish.wait(10)

    async def app(scope: dict, receive, send) -> None:
        await sync_to_async(slow_sync_work)()

    threads = RequestThreads(app, THREADS)

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


class FirstCallBlocks:
    """An app whose first request's sync call blocks until released (busy, or waiting on a
    locked database); the calls' paths and threads in the order they ran, and each request's
    arrival (its call is submitted before anyone else runs)."""

    def __init__(self, threads: int) -> None:
        self.running, self.release = threading.Event(), threading.Event()
        self.order: list[str] = []
        self.thread_ids: list[int] = []
        self.arrivals: asyncio.Queue[None] = asyncio.Queue()
        self.threads = RequestThreads(self, threads)

    def work(self, name: str) -> None:
        if not self.running.is_set():
            self.running.set()
            self.release.wait(10)
        self.order.append(name)
        self.thread_ids.append(threading.get_ident())

    async def __call__(self, scope: dict, receive, send) -> None:
        self.arrivals.put_nowait(None)
        await sync_to_async(self.work)(scope["path"])

    def request(self, method: str, name: str) -> asyncio.Task:
        scope = {"type": "http", "method": method, "path": name}
        return asyncio.create_task(self.threads(scope, no_receive, no_send))

    async def first(self, method: str, name: str) -> asyncio.Task:
        """The first request, once its call is running (and blocked)."""
        task = self.request(method, name)
        await asyncio.to_thread(self.running.wait, 10)
        await self.arrivals.get()
        return task


def test_calls_past_the_limit_wait_for_a_thread_instead_of_starting_one():
    app = FirstCallBlocks(threads=1)

    async def two_at_once() -> None:
        first = await app.first("GET", "first")
        second = app.request("GET", "second")
        await app.arrivals.get()
        assert list(app.threads.waiting[True]) != []  # the second request's call waits its turn
        app.release.set()
        await asyncio.gather(first, second)

    asyncio.run(two_at_once())
    ids = app.thread_ids
    assert len(ids) == 2 and len(set(ids)) == 1  # the second ran on the first's thread
    assert len(app.threads.idle) == 1 and app.threads.lent == 0


def test_a_waiting_read_gets_the_next_thread_before_a_waiting_write():
    # Under load a reply's stream (a GET) is served before more messages are accepted.
    app = FirstCallBlocks(threads=1)

    async def write_then_read_while_busy() -> None:
        first = await app.first("POST", "first")
        later = [app.request("POST", "write"), app.request("GET", "read")]
        for _ in later:
            await app.arrivals.get()
        app.release.set()
        await asyncio.gather(first, *later)

    asyncio.run(write_then_read_while_busy())
    assert app.order == ["first", "read", "write"]


def test_writers_waiting_on_a_locked_database_leave_a_thread_for_reads():
    # A message POST can wait out the busy timeout while another process has the database
    # locked; with every thread held by such writers, no page could be read meanwhile.
    app = FirstCallBlocks(threads=2)

    async def read_while_writers_wait() -> None:
        first = await app.first("POST", "first write")
        second = app.request("PATCH", "second write")
        await app.arrivals.get()
        assert list(app.threads.waiting[False]) != []  # the second writer waits for a thread
        try:
            await asyncio.wait_for(app.request("GET", "read"), HANG_GUARD_SECONDS)
        finally:
            app.release.set()
        await asyncio.wait_for(asyncio.gather(first, second), HANG_GUARD_SECONDS)

    asyncio.run(read_while_writers_wait())
    assert app.order == ["read", "first write", "second write"]
    assert app.threads.lent == 0 and app.threads.lent_writing == 0


def test_a_held_thread_does_not_count_against_the_limit():
    # A slow export holds its thread; other requests must not wait for it to end.
    export_has_a_thread, export_may_end = asyncio.Event(), asyncio.Event()
    seen: dict[str, int] = {}

    async def app(scope: dict, receive, send) -> None:
        if scope["path"] == "/export/":
            hold_request_thread()
            seen["export"] = await sync_to_async(threading.get_ident)()
            export_has_a_thread.set()
            await export_may_end.wait()
            seen["export, later"] = await sync_to_async(threading.get_ident)()
        else:
            seen["other"] = await sync_to_async(threading.get_ident)()

    threads = RequestThreads(app, threads=1)

    async def export_and_another() -> None:
        export = asyncio.create_task(threads(HTTP | {"path": "/export/"}, no_receive, no_send))
        await export_has_a_thread.wait()
        await threads(HTTP | {"path": "/other/"}, no_receive, no_send)  # not queued behind it
        export_may_end.set()
        await export

    asyncio.run(export_and_another())
    assert seen["export"] == seen["export, later"] != seen["other"]
    assert len(threads.idle) == 1 and threads.lent == 0  # the thread past the limit ended


def test_websocket_and_lifespan_scopes_pass_straight_through():
    received = []

    async def app(scope: dict, receive, send) -> None:
        received.append(scope["type"])

    asyncio.run(RequestThreads(app, THREADS)({"type": "lifespan"}, no_receive, no_send))
    assert received == ["lifespan"]
