"""ASGI entry point: daphne serves `chatsite.asgi:application`."""

import atexit
import gc
import os
import sys

import django
from django.conf import settings
from django.urls import get_resolver

from chatsite.asgi_handler import StreamingASGIHandler
from chatsite.request_threads import RequestThreads

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
django.setup(set_prefix=False)  # as get_asgi_application() does, for our handler

# Allocations between young collections (Python's default: 700), then the older generations'.
GC_THRESHOLDS = (3_000, 20, 20)

# Requests borrow a kept thread for their sync work instead of starting one each.
application = RequestThreads(StreamingASGIHandler(), settings.CHATSITE_REQUEST_THREADS)

from conversations import producers  # noqa: E402
from conversations.providers.http import (  # noqa: E402  (Django is set up)
    close_clients,
    provider_ssl_context,
)
from conversations.recovery import recover_at_startup  # noqa: E402
from conversations.shutdown import store_running_replies  # noqa: E402

# A process that starts owns no running reply: any reply a dead process left "generating"
# is marked interrupted now, before anyone can look at it.
recover_at_startup()

provider_ssl_context()  # loaded now, not by the first reply (with the event loop held up)


@atexit.register
def end_loop_work() -> None:
    """daphne stops its event loop without ending what still runs in it: the replies are
    stored as they stand (shutdown.py), their producers cancelled, then the provider client
    closed, whose connections they were reading."""
    try:
        store_running_replies()
    finally:
        producers.cancel_producers()
        close_clients()


# Under daphne, Twisted runs this before daphne's own "before shutdown" step, which cuts every
# open request: a /v1 client cut so has not left, and its reply is stored as interrupted, not
# as stopped for a client that disconnected. (Only if daphne installed the reactor: importing
# it here would install another.)
if (reactor := sys.modules.get("twisted.internet.reactor")) is not None:
    reactor.addSystemEventTrigger("before", "shutdown", producers.shutting_down.set)


# The objects made at start-up (modules, URL patterns, settings) live as long as the process:
# frozen, the cycle collector stops scanning them. And it runs less often: with hundreds of
# streams open, its passes held the event loop long enough to add a third to chunk latency p99
# (bench/; higher thresholds cut more, but every stream then held more memory).
# The URLconf is loaded now, not by the first request, so the views and all they import are
# frozen too.
get_resolver().url_patterns  # noqa: B018
gc.freeze()
gc.set_threshold(*GC_THRESHOLDS)
