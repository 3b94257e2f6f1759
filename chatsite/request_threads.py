"""Kept threads for requests' synchronous work, lent while that work runs.

Django's ASGIHandler enters a fresh asgiref ThreadSensitiveContext for every request: the
request's sync code (signal receivers, sync views, the ORM) gets a new thread, and a second
thread joins it afterwards. Two thread starts per request were a large share of a short
request's cost under load, and every request in flight, a reply's stream open for minutes
included, held a thread (and its database connection) while it only waited. asgiref (3.13+)
lets the caller own a context's executor, so each request here gets a LentThread: its sync
calls still run one at a time, on a kept thread borrowed while calls run and given back when
none is left. Threads are as many as the sync calls that overlap, not as the open requests.

A request whose sync calls share state through the thread's database connection must keep
one thread: QuerySet.aiterator (``async for`` over a QuerySet) reads through one cursor, on
PostgreSQL a server-side one, across several calls. Such code calls hold_request_thread()
first (conversations/exports.py does).

Database connections belong to threads. When a thread is given back, Django's
close_old_connections runs on it, as at the end of a request: a connection past CONN_MAX_AGE
is closed (with 0, every one), a persistent one stays with the kept thread. That makes
Django's request_started receivers (close_old_connections, and reset_queries for DEBUG's
query log, which Django caps) redundant here; they are disconnected, as each cost a thread
trip before every request's view.
"""

import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any

from asgiref.sync import ThreadSensitiveContext
from django.core.signals import request_started
from django.db import close_old_connections, connections, reset_queries

ASGIApp = Callable[[dict, Callable, Callable], Awaitable[None]]

_current: ContextVar["LentThread | None"] = ContextVar("chatsite_request_thread", default=None)


def hold_request_thread() -> None:
    """From now on, this request keeps one thread for all its sync calls, until it ends."""
    if lent := _current.get():
        lent.held = True


class RequestThreads:
    """ASGI wrapper: every HTTP request runs its sync code on threads lent by this pool."""

    def __init__(self, app: ASGIApp, keep: int = 64) -> None:
        self.app = app
        self.keep = keep  # idle threads kept; more are made when more sync calls overlap
        self.idle: list[ThreadPoolExecutor] = []
        self._lock = threading.Lock()  # threads are given back from the threads themselves
        request_started.disconnect(close_old_connections)  # done when a thread is given back
        request_started.disconnect(reset_queries)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        lent = LentThread(self)
        token = _current.set(lent)
        try:
            async with ThreadSensitiveContext(executor=lent):
                await self.app(scope, receive, send)
        finally:
            _current.reset(token)
            lent.end()  # a call still running (a cancelled request's) keeps it until done

    def borrow(self) -> ThreadPoolExecutor:
        with self._lock:
            if self.idle:
                return self.idle.pop()
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatsite-request")

    def give_back(self, thread: ThreadPoolExecutor) -> None:
        """Keep an idle thread for the next request, or end it when enough are kept."""
        with self._lock:
            if len(self.idle) < self.keep:
                self.idle.append(thread)
                return
        thread.submit(connections.close_all)  # on that thread: its connections go with it
        thread.shutdown(wait=False)


class LentThread(Executor):
    """One request's executor: runs its sync calls one at a time on a borrowed kept thread,
    held while calls run (or, once held, until the request ends)."""

    def __init__(self, pool: RequestThreads) -> None:
        self.pool = pool
        self.thread: ThreadPoolExecutor | None = None
        self.held = False  # keep the thread between calls
        self.running = 0  # calls submitted and not finished
        self._lock = threading.Lock()

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        with self._lock:
            if self.thread is None:
                self.thread = self.pool.borrow()
            self.running += 1
            return self.thread.submit(self._run, fn, args, kwargs)

    def end(self) -> None:
        with self._lock:
            self.held = False
            thread = self._unneeded_thread()
        if thread is not None:  # Django's request_finished saw to its connections
            self.pool.give_back(thread)

    def _run(self, fn: Callable, args: tuple, kwargs: dict) -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            with self._lock:
                self.running -= 1
                thread = self._unneeded_thread()
            if thread is not None:
                close_old_connections()  # on the thread itself, as at a request's end
                self.pool.give_back(thread)

    def _unneeded_thread(self) -> ThreadPoolExecutor | None:
        """The thread, taken from this request, if it no longer needs it (under the lock)."""
        if self.held or self.running or self.thread is None:
            return None
        thread, self.thread = self.thread, None
        return thread
