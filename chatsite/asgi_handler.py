"""Django's ASGI handler with a lighter request lifecycle, for a server of long streams.

Django's ASGIHandler.handle (6.x) ends every request by raising an exception class it defines
anew for that request, which leaves a class, an ExceptionGroup and its traceback per request
for the cycle collector, and it closes every response in a trip to a thread. Here:

- the task listening for a disconnect is cancelled once the response is sent, so a request
  that ends normally raises nothing; a disconnect still cancels the request as in Django;
- the response is closed on the event loop: its request_finished receivers
  (close_old_connections, close_caches, reset_urlconf) do no I/O there, as the loop's thread
  holds no database connection (a request's thread closes its own when it is given back,
  chatsite/request_threads.py).

Together about 4 % of a short reply's instructions (callgrind, same inputs). And a body sent
without a Content-Length (Transfer-Encoding: chunked, as a client streaming its upload sends)
is given the length it has: DRF reads no body without one, and Django checks its size limit
against it. Everything else is Django's.
"""

import asyncio
import os
from collections.abc import Awaitable, Callable
from contextlib import closing
from typing import IO

from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.urls import set_script_prefix

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class StreamingASGIHandler(ASGIHandler):
    def create_request(self, scope: dict, body_file: IO[bytes]) -> tuple:
        request, error_response = super().create_request(scope, body_file)
        if request is not None and "CONTENT_LENGTH" not in request.META:
            # The server has read the whole body (daphne decodes a chunked one): its length.
            size = body_file.seek(0, os.SEEK_END)
            body_file.seek(0)
            if size:
                request.META["CONTENT_LENGTH"] = str(size)
        return request, error_response

    async def handle(self, scope: dict, receive: Receive, send: Send) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        with closing(body_file):
            set_script_prefix(get_script_prefix(scope))
            await signals.request_started.asend(sender=self.__class__, scope=scope)
            request, error_response = self.create_request(scope, body_file)
            if request is None:
                await self.send_response(error_response, send)
                error_response.close()
                return
            response = None
            try:
                try:
                    async with asyncio.TaskGroup() as tasks:
                        listener = tasks.create_task(self.listen_for_disconnect(receive))
                        response = await self.run_get_response(request)
                        await self.send_response(response, send)
                        listener.cancel()
                except* RequestAborted:
                    pass  # the client went away: the response was cancelled where it was
            except BaseExceptionGroup as group:  # as Django: the server sees the error itself
                if len(group.exceptions) == 1:
                    raise group.exceptions[0]  # noqa: B904 (the group adds nothing to its context)
                raise
            if response is None:
                await signals.request_finished.asend(sender=self.__class__)
            else:
                response.close()
