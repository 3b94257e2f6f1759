"""Reused threads for each request's synchronous work.

Django's ASGIHandler enters a fresh asgiref ThreadSensitiveContext for every request: the
request's sync code (signal receivers, sync views, the ORM) gets a new thread, and a second
thread joins it afterwards. Two thread starts per request were a large share of a short
request's cost under load. asgiref (3.13+) lets the caller own a context's executor, so
each request here borrows a one-thread executor from a free list and gives it back after;
Django's own context nests inside ours and adds nothing. A request still has its thread to
itself, exactly as before: only the thread outlives the request.
"""

from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext

ASGIApp = Callable[[dict, Callable, Callable], Awaitable[None]]


class RequestThread(ThreadPoolExecutor):
    """One thread for one request at a time, which knows whether work is still queued."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="chatsite-request")
        self.unfinished: set[Future] = set()

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        future = super().submit(fn, *args, **kwargs)
        self.unfinished.add(future)
        future.add_done_callback(self.unfinished.discard)
        return future


class RequestThreads:
    """ASGI wrapper: every HTTP request runs its sync code on a borrowed RequestThread."""

    def __init__(self, app: ASGIApp, keep: int = 64) -> None:
        self.app = app
        self.keep = keep  # idle threads kept; more are made when more requests overlap
        self.idle: list[RequestThread] = []

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        thread = self.idle.pop() if self.idle else RequestThread()
        try:
            async with ThreadSensitiveContext(executor=thread):
                await self.app(scope, receive, send)
        finally:
            self.give_back(thread)

    def give_back(self, thread: RequestThread) -> None:
        # A cancelled request may leave sync work running; that thread is not lent again.
        if thread.unfinished or len(self.idle) >= self.keep:
            thread.shutdown(wait=False)
        else:
            self.idle.append(thread)
