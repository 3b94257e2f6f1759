"""The caches' own parts: the process-memory cache (without REDIS_URL), whose async methods
answer on the event loop, and one Redis connection pool per process (with REDIS_URL).

Django's BaseCache runs each async method (aget, aset, ...) in a thread (sync_to_async). For
LocMemCache the read is a dict lookup under a lock, and the trip costs far more: a stream
GET reads its session and user through these methods before each reply's first token, and
its thread waits for the interpreter while the reply's producer is busy on the loop (bench/).
Here they call the sync methods directly. Redis keeps Django's threads: its reads are I/O.
"""

# ruff: noqa: ASYNC109 (`timeout` is the cache API's own argument, not an asyncio timeout)

import threading
from typing import Any, ClassVar

import redis
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache

type Version = int | None


class ProcessMemoryCache(LocMemCache):
    async def aadd(
        self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Version = None
    ) -> bool:
        return self.add(key, value, timeout, version)

    async def aget(self, key: str, default: Any = None, version: Version = None) -> Any:
        return self.get(key, default, version)

    async def aset(
        self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Version = None
    ) -> None:
        self.set(key, value, timeout, version)

    async def atouch(
        self, key: str, timeout: Any = DEFAULT_TIMEOUT, version: Version = None
    ) -> bool:
        return self.touch(key, timeout, version)

    async def adelete(self, key: str, version: Version = None) -> bool:
        return self.delete(key, version)

    async def ahas_key(self, key: str, version: Version = None) -> bool:
        return self.has_key(key, version)

    async def aincr(self, key: str, delta: int = 1, version: Version = None) -> int:
        return self.incr(key, delta, version)

    async def aclear(self) -> None:
        self.clear()


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
