"""The process-memory cache (without REDIS_URL), whose async methods answer on the event loop.

Django's BaseCache runs each async method (aget, aset, ...) in a thread (sync_to_async). For
LocMemCache the read is a dict lookup under a lock, and the trip costs far more: a stream
GET reads its session and user through these methods before each reply's first token, and
its thread waits for the interpreter while the reply's producer is busy on the loop (bench/).
Here they call the sync methods directly. Redis keeps Django's threads: its reads are I/O.
"""

# ruff: noqa: ASYNC109 (`timeout` is the cache API's own argument, not an asyncio timeout)

from typing import Any

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
