"""The pool of Django's Redis cache (with REDIS_URL), in a module of its own: a process
without Redis does not import redis-py (about 60 ms at its first request)."""

import threading
from typing import Any, ClassVar

import redis


class SharedConnectionPool(redis.ConnectionPool):
    """The pool of Django's RedisCache (its pool_class option): one per process and URL.

    Django makes a cache object, and with it a new pool, for every request, as each runs in a
    context of its own (Django ticket #35651): every request opened a connection to Redis, a
    TCP handshake and redis-py's setup commands before its session could be read. Here every
    cache object gets the pool made first; redis-py's pools are thread-safe and fork-safe.
    Keyed by URL alone: the options RedisCache passes are the one cache's, every time.
    """

    _shared: ClassVar[dict[str, "SharedConnectionPool"]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()  # request threads make cache objects

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "SharedConnectionPool":
        with cls._lock:
            if url not in cls._shared:
                cls._shared[url] = super().from_url(url, **options)
            return cls._shared[url]
