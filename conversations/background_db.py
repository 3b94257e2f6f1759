"""Database calls from background tasks: producers, the checkpoint loop, the recovery sweep.

Requests' connections go with their lent threads (chatsite/request_threads.py). Background
tasks belong to no request. Their calls run on asgiref's one thread for thread-sensitive code
outside any request, and keep that thread's connection from one call to the next, instead
of opening and closing one for each reply's start, finish and every checkpoint. As Django
does at the start of a request, a connection that had an error is dropped if it no longer
works, so a database restart costs at most the call that saw it.
"""

from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async
from django.db import connections


def in_background[**P, R](function: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`function` as a coroutine function, run on the background thread and its connection."""

    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        drop_broken_connections()
        return function(*args, **kwargs)

    return sync_to_async(call, thread_sensitive=True)


def drop_broken_connections() -> None:
    """Django's close_if_unusable_or_obsolete, without the age limit meant for requests."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is None:
            continue
        if connection.get_autocommit() != connection.settings_dict["AUTOCOMMIT"] or (
            connection.errors_occurred and not connection.is_usable()
        ):
            connection.close()
        else:
            connection.errors_occurred = False
