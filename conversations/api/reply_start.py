"""The views that create a reply (message POST, regenerate) and start its producer.

Django runs a sync view in a thread, then renders a DRF Response in a second trip to that
thread, and starting the producer from inside the view needed a third, the other way, onto
the event loop. Each trip is a thread hop; together they were a large part of the time
before a reply's first token. Here the view, the reply's provider request (one history
query) and the rendering run in one trip; the producer starts on the loop afterwards, before
the response is sent, so the stream GET that follows finds the reply's event log open. Both run
shielded from the client leaving: a stored message always gets its reply started. On SQLite
the event loop waits for that trip (with_the_loop_waiting), so the view runs at the
interpreter's full speed.
"""

import asyncio
import functools
import threading
import time
from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from conversations.models import Message
from conversations.recovery import ensure_background_tasks
from conversations.relay import start_reply
from conversations.reply_job import ReplyJob, prepared_job

type View = Callable[..., HttpResponseBase]

# How long the event loop waits for a start's view: a view running longer holds the streams up
# no longer than that.
VIEW_WAIT_SECONDS = 0.02
THREAD_START_SECONDS = 0.0005  # a view not running by then waits for a thread: not waited for
# The loop waits in slices and goes on once a slice passes with the view's thread hardly
# computing: the view then waits on something else (a lock another thread holds, a call back
# into the loop), and the streams need not wait with it.
WAIT_SLICE_SECONDS = 0.002
BUSY_SHARE = 0.5  # of a slice's time, the view thread's CPU time in it for the loop to wait on
# The thread's own CPU clock: Linux and most Unix have one; elsewhere (macOS) the loop does not
# wait, as on PostgreSQL.
THREAD_CLOCKS = hasattr(time, "pthread_getcpuclockid")


def starts_replies(view: View) -> Callable:
    """An APIView's view (as_view()) whose responses may carry `reply_to_start`."""

    def respond(request: HttpRequest, **kwargs: object) -> tuple[HttpResponseBase, tuple | None]:
        response = view(request, **kwargs)
        reply = getattr(response, "reply_to_start", None)
        job = getattr(response, "job_to_start", None)  # else read from the database
        start = (reply, job or prepared_job(reply)) if reply is not None else None
        return rendered(response), start

    async def respond_then_start(request: HttpRequest, **kwargs: object) -> HttpResponseBase:
        response, start = await with_the_loop_waiting(respond, request, **kwargs)
        if start is not None:
            await start_producer(*start)
        return response

    async def respond_even_if_the_client_leaves(
        request: HttpRequest, **kwargs: object
    ) -> HttpResponseBase:
        # A client that goes away (a dropped connection, a closed tab) cancels its request;
        # shielded, a message the view stores still gets its reply started, and a retry with
        # the same client_id finds that reply running instead of one that never started.
        return await asyncio.shield(respond_then_start(request, **kwargs))

    # as_view()'s attributes: csrf_exempt (DRF checks CSRF itself), cls for the API schema.
    return functools.update_wrapper(respond_even_if_the_client_leaves, view)


async def with_the_loop_waiting[T](
    respond: Callable[..., T], request: HttpRequest, **kwargs: object
) -> T:
    """`respond` on the request's thread, as sync_to_async runs it, the event loop waiting
    (on SQLite).

    While the loop relays other replies, a view's thread gets the interpreter back at each
    SQLite call only when the loop gives it up, at the latest after the 5 ms switch interval, so
    a view of a few milliseconds of CPU took several times that. The loop, waiting, gives it up
    at once, and the other streams wait those milliseconds instead (bench/HISTORY.md: more
    chunks per second at 500 streams, less CPU per chunk); not while the view waits on something
    else, as a database locked by another writer. Not on PostgreSQL: there a view also waits on
    the network (a new connection without the pool), with nothing for the core to do.
    """
    if connections[DEFAULT_DB_ALIAS].vendor != "sqlite" or not THREAD_CLOCKS:
        return await sync_to_async(respond)(request, **kwargs)
    running, finished = threading.Event(), threading.Event()
    view_clock: list[int] = []

    def run(*args: object, **kwargs: object) -> T:
        # Its thread's CPU clock, taken here: the thread is the request's, alive until the
        # request ends, so the loop can read the clock while it waits.
        view_clock.append(time.pthread_getcpuclockid(threading.get_ident()))
        running.set()
        try:
            return respond(*args, **kwargs)
        finally:
            finished.set()

    trip = asyncio.ensure_future(sync_to_async(run)(request, **kwargs))
    # One pass: asgiref submits the call to the request's executor in the task's first step.
    await asyncio.sleep(0)
    if running.wait(THREAD_START_SECONDS):
        wait_while_computing(finished, view_clock[0])
    return await trip


def wait_while_computing(finished: threading.Event, clock: int) -> None:
    """Block the event loop (on purpose, above) until `finished`, for VIEW_WAIT_SECONDS at most,
    and only while the view's thread computes (its CPU `clock`): a view queued behind another
    thread (a writer hashing a password in its transaction, say) lets the loop go on, computing
    or not."""
    cpu, now = time.clock_gettime(clock), time.monotonic()
    deadline = now + VIEW_WAIT_SECONDS
    while now < deadline and not finished.wait(min(WAIT_SLICE_SECONDS, deadline - now)):
        used, took = time.clock_gettime(clock) - cpu, time.monotonic() - now
        if used < BUSY_SHARE * took:
            return
        cpu, now = cpu + used, now + took


async def start_producer(reply: Message, job: ReplyJob | None) -> None:
    ensure_background_tasks()
    await start_reply(reply, job)


def rendered(response: HttpResponseBase) -> HttpResponseBase:
    """A DRF Response rendered now, as a plain HttpResponse Django will not render again."""
    if not callable(getattr(response, "render", None)):
        return response
    response.render()
    plain = HttpResponse(response.content, status=response.status_code, headers=response.headers)
    plain.cookies = response.cookies
    return plain
