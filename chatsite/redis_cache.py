"""Django's Redis cache (with REDIS_URL): one client per process, its reads awaited on the loop.

Django makes a cache object for every request, as each runs in a context of its own (Django
ticket #35651), and every cache object made its own RedisCacheClient: a connection pool (a
new connection to Redis per request) and redis-py's DriverInfo, whose version lookup reads
the installed packages' metadata from disk (about 0.6 ms; a message POST and its stream paid
it twice per reply). Every command also made a redis-py client. Here the cache objects of a
process share one RedisCacheClient, which keeps one redis-py client per server.

A stream's reads before its first token (its session, its user) are `aget`, which Django
runs as the sync `get` in a thread: here they are awaited on redis-py's asyncio client, on
the same server, in the same format (the cache's OPTIONS, none in chatsite's settings, apply
to the sync client only). The other async methods keep Django's thread.

In a module of its own: a process without Redis does not import redis-py (about 60 ms of its
first request).
"""

import asyncio
import threading
from typing import Any, ClassVar

import django
import redis
import redis.asyncio
from django.conf import settings
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.functional import cached_property
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.driver_info import DriverInfo

# What each new connection tells Redis about its client (CLIENT SETINFO), looked up once, as
# Django's own client says it.
DRIVER_INFO = DriverInfo().add_upstream_driver("django", django.get_version())


def reconnecting() -> Retry:
    # A command finding its pooled connection dropped (Redis restarted) goes again on a new
    # one; redis-py's asyncio clients retry nothing by default (the cache's reads here, the
    # event log's commands). Not timeouts: a hung Redis would cost thrice.
    return Retry(
        ExponentialBackoff(cap=0.25, base=0.01),
        2,
        supported_errors=(redis.asyncio.ConnectionError,),
    )


class SharedClients(RedisCacheClient):
    """Django's RedisCacheClient, with one redis-py client (and pool) per server, made once.

    Request threads share it: redis-py's clients and pools are thread-safe.
    """

    def __init__(self, servers: list[str], **options: Any) -> None:
        super().__init__(servers, **options)
        self._clients: dict[int, redis.Redis] = {}
        self._lock = threading.Lock()

    def get_client(self, key: str | None = None, *, write: bool = False) -> redis.Redis:
        index = self._get_connection_pool_index(write)
        if index not in self._clients:
            with self._lock:  # one pool per server, even when two threads come at once
                if index not in self._clients:
                    pool = self._pool_class.from_url(self._servers[index], **self._pool_options)
                    self._pools[index] = pool
                    self._clients[index] = self._client(connection_pool=pool)
        return self._clients[index]


class ProcessRedisCache(RedisCache):
    """The cache backend (CACHES' BACKEND with REDIS_URL)."""

    _shared: ClassVar[dict[str, SharedClients]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()  # request threads make caches
    # asyncio clients, one per event loop and server: a client cannot cross loops (tests
    # run several).
    _on_loops: ClassVar[dict[tuple[asyncio.AbstractEventLoop, str], redis.asyncio.Redis]] = {}

    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = SharedClients

    @cached_property
    def _cache(self) -> SharedClients:
        # Keyed by the cache's settings: every request's cache object of one alias is alike.
        key = repr((self._servers, sorted(self._options.items())))
        with self._shared_lock:
            if key not in self._shared:
                self._shared[key] = self._class(self._servers, **self._options)
            return self._shared[key]

    async def aget(self, key: str, default: Any = None, version: int | None = None) -> Any:
        key = self.make_and_validate_key(key, version=version)
        value = await self._async_client().get(key)
        return default if value is None else self._cache._serializer.loads(value)

    def _async_client(self) -> redis.asyncio.Redis:
        # The server a sync read would use (the first, unless there are read replicas).
        server = self._servers[self._cache._get_connection_pool_index(write=False)]
        loop = asyncio.get_running_loop()
        client = self._on_loops.get((loop, server))
        if client is None:  # on the loop's own thread: no other task runs in between
            client = redis.asyncio.Redis.from_url(
                server,
                # Streams starting at once read at once, each on a connection of its own.
                max_connections=settings.CHATSITE_REDIS_MAX_CONNECTIONS,
                driver_info=DRIVER_INFO,
                retry=reconnecting(),
            )
            self._on_loops[loop, server] = client
        return client
