"""A start's view runs on its request thread with the event loop waiting for it, on SQLite
(conversations/api/reply_start.py, with_the_loop_waiting), for a bounded time only; on
PostgreSQL the loop goes on meanwhile."""

import asyncio
import threading
import time

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.http import HttpResponse
from django.test import RequestFactory

from conversations.api import reply_start
from conversations.api.reply_start import starts_replies, with_the_loop_waiting

HANG_GUARD_SECONDS = 30  # a failure, not a timing check
CHANCE_SECONDS = 0.05  # time a free event loop has to run a ready callback (nothing timed)


def run_in_a_thread(coroutine_function) -> list:
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


def test_the_event_loop_waits_while_a_starts_view_runs_on_sqlite(monkeypatch):
    monkeypatch.setattr(reply_start, "VIEW_WAIT_SECONDS", 3600.0)
    request = RequestFactory().post("/")

    async def start() -> list:
        loop = asyncio.get_running_loop()
        seen: list = []

        def view(request) -> HttpResponse:  # a start's view, as starts_replies wraps one
            seen.append("view begins")
            loop.call_soon_threadsafe(seen.append, "the loop runs")  # ready at once
            time.sleep(CHANCE_SECONDS)
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


def test_a_view_that_needs_the_loop_gets_it_after_the_bound(monkeypatch):
    # A view calling back into the loop (async_to_sync) would wait for ever for a loop that
    # waits for it: the bound lets the loop go.
    monkeypatch.setattr(reply_start, "VIEW_WAIT_SECONDS", 0.01)
    request = RequestFactory().post("/")

    async def from_the_loop() -> str:
        return "from the loop"

    async def start() -> str:
        return await with_the_loop_waiting(lambda request: async_to_sync(from_the_loop)(), request)

    assert run_in_a_thread(start) == "from the loop"


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
