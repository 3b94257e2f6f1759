"""A start's view runs on its request thread with the event loop waiting for it, on SQLite
(conversations/api/reply_start.py, with_the_loop_waiting), for a bounded time and only while
the view's thread computes; on PostgreSQL the loop goes on meanwhile."""

import asyncio
import threading
import time
from collections.abc import Callable

import pytest
from django.db import connection
from django.http import HttpResponse
from django.test import RequestFactory

from conversations.api import reply_start
from conversations.api.reply_start import starts_replies, with_the_loop_waiting

HANG_GUARD_SECONDS = 30  # a failure, not a timing check
CHANCE_SECONDS = 0.05  # time a free event loop has to run a ready callback (nothing timed)


def run_in_a_thread(coroutine_function) -> object:
    """asyncio.run in a thread of its own: a loop blocked for good fails the test, not the run."""
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(asyncio.run(coroutine_function())))
    thread.daemon = True
    thread.start()
    thread.join(HANG_GUARD_SECONDS)
    assert outcome, "the event loop was blocked"
    return outcome[0]


ON_SQLITE = connection.vendor == "sqlite"


@pytest.fixture(autouse=True)
def thread_starts_in_time(monkeypatch):
    """On a busy machine a thread may take more than the site's half millisecond to start."""
    monkeypatch.setattr(reply_start, "THREAD_START_SECONDS", 5.0)


def compute(seconds: float) -> None:
    """Keep this thread busy for `seconds` of its own CPU time."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def test_the_event_loop_waits_while_a_starts_view_computes_on_sqlite(monkeypatch):
    monkeypatch.setattr(reply_start, "VIEW_WAIT_SECONDS", 3600.0)
    # A thread computing gets a tenth of each 20 ms slice, however busy the machine.
    monkeypatch.setattr(reply_start, "WAIT_SLICE_SECONDS", 0.02)
    monkeypatch.setattr(reply_start, "BUSY_SHARE", 0.1)
    request = RequestFactory().post("/")

    async def start() -> list:
        loop = asyncio.get_running_loop()
        seen: list = []

        def view(request) -> HttpResponse:  # a start's view, as starts_replies wraps one
            seen.append("view begins")
            loop.call_soon_threadsafe(seen.append, "the loop runs")  # ready at once
            compute(CHANCE_SECONDS)
            seen.append("view ends")
            return HttpResponse(b"no reply started")

        response = await starts_replies(view)(request)
        await asyncio.sleep(0)
        return [*seen, response.content]

    if ON_SQLITE:
        expected = ["view begins", "view ends", "the loop runs", b"no reply started"]
    else:  # the loop goes on while the view waits on the network
        expected = ["view begins", "the loop runs", "view ends", b"no reply started"]
    assert run_in_a_thread(start) == expected


def loop_runs_during(wait_in_view: Callable[[], object], loop_ran: threading.Event) -> bool:
    """Whether the event loop ran a callback made ready as a start's view began, by the time
    the view, having called wait_in_view(), ends."""
    request = RequestFactory().post("/")

    async def start() -> bool:
        loop = asyncio.get_running_loop()

        def view(request) -> bool:
            loop.call_soon_threadsafe(loop_ran.set)
            wait_in_view()
            return loop_ran.is_set()

        return await with_the_loop_waiting(view, request)

    return run_in_a_thread(start)


def compute_until(event: threading.Event) -> None:
    """Compute until `event` is set; a blocked loop never sets it: given up halfway to the
    hang guard."""
    until = time.monotonic() + HANG_GUARD_SECONDS / 2
    while not event.is_set() and time.monotonic() < until:
        compute(0.001)


def test_a_view_computing_longer_than_the_bound_lets_the_loop_go(monkeypatch):
    monkeypatch.setattr(reply_start, "VIEW_WAIT_SECONDS", 0.01)
    monkeypatch.setattr(reply_start, "BUSY_SHARE", 0.0)  # however little it computes
    loop_ran = threading.Event()
    assert loop_runs_during(lambda: compute_until(loop_ran), loop_ran) is True


def test_a_view_waiting_on_something_else_lets_the_loop_go(monkeypatch):
    # As a view held by a locked database, or calling back into the loop (async_to_sync),
    # which would wait for ever for a loop waiting for it: the view's thread computes nothing.
    monkeypatch.setattr(reply_start, "VIEW_WAIT_SECONDS", 3600.0)
    loop_ran = threading.Event()
    assert loop_runs_during(lambda: loop_ran.wait(HANG_GUARD_SECONDS / 2), loop_ran) is True


def test_a_view_queued_behind_a_computing_thread_lets_the_loop_go(monkeypatch):
    # As a message POST waiting for SQLite's write lock while another request's transaction
    # hashes a password: that thread computes, the view's does not.
    monkeypatch.setattr(reply_start, "VIEW_WAIT_SECONDS", 3600.0)
    loop_ran, lock, holding = threading.Event(), threading.Lock(), threading.Event()

    def writer() -> None:  # holds the lock, computing, until the loop has run
        with lock:
            holding.set()
            compute_until(loop_ran)

    threading.Thread(target=writer, daemon=True).start()
    holding.wait(HANG_GUARD_SECONDS)

    def wait_for_the_lock() -> None:
        with lock:
            pass

    assert loop_runs_during(wait_for_the_lock, loop_ran) is True


def test_a_views_error_reaches_the_caller():
    request = RequestFactory().post("/")

    def view(request) -> None:
        raise ValueError("refused")

    async def start() -> str:
        try:
            await with_the_loop_waiting(view, request)
        except ValueError as error:
            return str(error)
        return "no error"

    assert run_in_a_thread(start) == "refused"
