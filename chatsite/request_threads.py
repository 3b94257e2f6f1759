"""Kept threads for requests' synchronous work, lent while that work runs.

Django's ASGIHandler enters a fresh asgiref ThreadSensitiveContext for every request: the
request's sync code (signal receivers, sync views, the ORM) gets a new thread, and a second
thread joins it afterwards. Two thread starts per request were a large share of a short
request's cost under load, and every request in flight, a reply's stream open for minutes
included, held a thread (and its database connection) while it only waited. asgiref (3.13+)
lets the caller own a context's executor, so each request here gets a LentThread: its sync
calls still run one at a time, on a kept thread borrowed while calls run and given back when
none is left. Threads are as many as the sync calls that overlap, not as the open requests,
and at most CHATSITE_REQUEST_THREADS: past that, a call waits on the event loop for a thread
to be given back (a few threads keep the process as busy as hundreds would, as only one of
them runs Python at a time; each more costs memory and a database connection). And more are
slower: with 32, up to 32 message POSTs run at once, each finishing late, a SQLite writer
waiting for the interpreter while it holds the write lock, the event loop (every stream's
tokens) getting a smaller share; 100 replies started at once saw their first tokens sooner
with 4 (bench/). Requests that may write (any method but GET and HEAD) get all threads but
one: a writer can wait for the busy timeout on a database another process has locked, and
with every thread held by such waiters no page or stored reply could be read meanwhile.

A request whose sync calls share state through the thread's database connection must keep
one thread: QuerySet.aiterator (``async for`` over a QuerySet) reads through one cursor, on
PostgreSQL a server-side one, across several calls. Such code calls hold_request_thread()
first (conversations/exports.py does). A thread held from a request's first call is not
counted against the limit, so slow exports cannot starve other requests.

Database connections belong to threads. When a thread is given back, Django's
close_old_connections runs on it, as at the end of a request: a connection past CONN_MAX_AGE
is closed (with 0, every one), a persistent one stays with the kept thread. That makes
Django's request_started receivers (close_old_connections, and reset_queries for DEBUG's
query log, which Django caps) redundant here; they are disconnected, as each cost a thread
trip before every request's view.
"""

import threading
from collections import deque
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
        lent.hold()


class RequestThreads:
    """ASGI wrapper: every HTTP request runs its sync code on threads lent by this pool."""

    def __init__(self, app: ASGIApp, threads: int) -> None:
        self.app = app
        self.most = threads  # lent at once (held ones aside), and kept when idle
        self.most_writing = max(1, threads - 1)  # one left for reads (see above)
        self.idle: list[ThreadPoolExecutor] = []
        self.lent = 0  # threads lent now that count against `most`
        self.lent_writing = 0  # of those, lent to requests that may write
        # Requests whose calls wait for a thread: reads first (a reply's stream, a page), as
        # finishing what was accepted comes before accepting more (a message POST).
        self.waiting: dict[bool, deque[LentThread]] = {True: deque(), False: deque()}
        self._lock = threading.Lock()  # threads are given back from the threads themselves
        request_started.disconnect(close_old_connections)  # done when a thread is given back
        request_started.disconnect(reset_queries)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        lent = LentThread(self, reads_only=scope["method"] in ("GET", "HEAD"))
        token = _current.set(lent)
        try:
            async with ThreadSensitiveContext(executor=lent):
                await self.app(scope, receive, send)
        finally:
            _current.reset(token)
            lent.end()  # a call still running (a cancelled request's) keeps it until done

    def borrow(self, lent: "LentThread", counted: bool) -> ThreadPoolExecutor | None:
        """A thread for `lent`; None when none may be lent now (all are, or a writer's share):
        it is handed one later (receive)."""
        with self._lock:
            if counted and not self._may_lend(lent.reads_only):
                self.waiting[lent.reads_only].append(lent)
                return None
            if counted:
                self._count(lent.reads_only, 1)
            return self._idle_or_new()

    def give_back(self, thread: ThreadPoolExecutor, counted: bool, reads_only: bool) -> None:
        """Hand a thread to a waiting request, keep it idle, or end it when enough are kept."""
        with self._lock:
            if counted:
                self._count(reads_only, -1)
            waiter = self._next_waiter()
            if waiter is None and len(self.idle) < self.most:
                self.idle.append(thread)
                return
        if waiter is not None:
            waiter.receive(thread)
            return
        thread.submit(connections.close_all)  # on that thread: its connections go with it
        thread.shutdown(wait=False)

    def _next_waiter(self) -> "LentThread | None":
        """The first waiting request that may have a thread, reads first, its thread counted
        (under the lock)."""
        for reads_only in (True, False):
            if self.waiting[reads_only] and self._may_lend(reads_only):
                self._count(reads_only, 1)
                return self.waiting[reads_only].popleft()
        return None

    def _may_lend(self, reads_only: bool) -> bool:
        return self.lent < self.most and (reads_only or self.lent_writing < self.most_writing)

    def _count(self, reads_only: bool, change: int) -> None:
        self.lent += change
        if not reads_only:
            self.lent_writing += change

    def _idle_or_new(self) -> ThreadPoolExecutor:
        if self.idle:
            return self.idle.pop()
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatsite-request")


type Call = tuple[Future, Callable, tuple, dict]


class LentThread(Executor):
    """One request's executor: runs its sync calls one at a time on a borrowed kept thread,
    held while calls run (or, once held, until the request ends)."""

    def __init__(self, pool: RequestThreads, reads_only: bool) -> None:
        self.pool = pool
        self.reads_only = reads_only  # a safe method: served first when calls wait
        self.thread: ThreadPoolExecutor | None = None
        self.counted = False  # the thread counts against the pool's limit
        self.held = False  # keep the thread between calls, uncounted
        self.running = 0  # calls submitted and not finished
        self.pending: list[Call] = []  # calls waiting for a thread
        self._lock = threading.Lock()

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        call = (Future(), fn, args, kwargs)
        with self._lock:
            self.running += 1
            if self.thread is None and not self.pending:
                counted = not self.held
                self.thread = self.pool.borrow(self, counted)
                self.counted = counted and self.thread is not None
            if self.thread is None:
                self.pending.append(call)
            else:
                self.thread.submit(self._run, *call)
        return call[0]

    def receive(self, thread: ThreadPoolExecutor) -> None:
        """The pool's answer to a borrow that had to wait: run the calls that waited."""
        with self._lock:
            self.thread, self.counted = thread, True
            for call in self.pending:
                thread.submit(self._run, *call)
            self.pending.clear()

    def hold(self) -> None:
        """Keep the thread from the next call on (held before its first call, as exports
        are, it is not counted; a thread already lent stays counted until the request ends)."""
        with self._lock:
            self.held = True

    def end(self) -> None:
        with self._lock:
            self.held = False
            thread, counted = self._unneeded_thread()
        if thread is not None:  # its connections were seen to when its last call ended
            self.pool.give_back(thread, counted, self.reads_only)

    def _run(self, future: Future, fn: Callable, args: tuple, kwargs: dict) -> None:
        result = error = None
        if future.set_running_or_notify_cancel():  # not cancelled while it waited
            try:
                result = fn(*args, **kwargs)
            except BaseException as raised:  # handed to the awaiting coroutine, as an executor does
                error = raised
        with self._lock:
            self.running -= 1
            thread, counted = self._unneeded_thread()
        if thread is not None:  # given back before the caller resumes, so it can reuse it
            close_old_connections()  # on the thread itself, as at a request's end
            self.pool.give_back(thread, counted, self.reads_only)
        if future.running():
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)

    def _unneeded_thread(self) -> tuple[ThreadPoolExecutor | None, bool]:
        """The thread, taken from this request, if it no longer needs it (under the lock)."""
        if self.held or self.running or self.thread is None:
            return None, False
        thread, self.thread = self.thread, None
        counted, self.counted = self.counted, False
        return thread, counted
