"""With REDIS_URL, sessions and users are cached in Redis (chatsite/redis_cache.py): one client
per process, and a stream's reads awaited on the event loop.

Django makes a cache object for every request (each runs in a context of its own: Django
ticket #35651), and with it a Redis client and pool: every request opened a new connection to
Redis and looked redis-py's version up in the installed packages' metadata.
"""

import asyncio
import os
import subprocess
import sys
import uuid

import redis
from django.conf import settings

from chatsite.redis_cache import ProcessRedisCache


def connections_received(store: redis.Redis) -> int:
    return store.info("stats")["total_connections_received"]


def test_requests_reuse_the_cache_connections_to_redis(start_server, redis_url, client_for, alice):
    prefix = f"chatsite-test-{uuid.uuid4().hex}"
    server = start_server(REDIS_URL=redis_url, CHATSITE_REDIS_PREFIX=prefix)
    client = client_for(alice, base_url=server.url)
    store = redis.Redis.from_url(redis_url)
    conversation = client.new_conversation()  # the process's first requests: its connections
    before = connections_received(store)

    for _ in range(20):
        response = client.http.get(f"/api/conversations/{conversation['id']}/")
        assert response.status_code == 200, response.text

    assert store.keys(f"{prefix}:1:*")  # the cache (alice's session and user) is in Redis
    assert connections_received(store) - before <= 2  # not one or more per request


def new_cache(redis_url: str, name: str = "") -> ProcessRedisCache:
    # A URL of its own (client_name, which Redis just records): a cache whose process-wide
    # client no earlier test made.
    location = f"{redis_url}?client_name={name or f'test-{uuid.uuid4().hex}'}"
    return ProcessRedisCache(location, {"KEY_PREFIX": f"chatsite-test-{uuid.uuid4().hex}"})


def test_every_requests_cache_object_shares_one_client(redis_url):
    location = f"{redis_url}?client_name=test-{uuid.uuid4().hex}"
    first, second = (ProcessRedisCache(location, {}) for _ in range(2))  # two requests'

    first.set("greeting", "hello")
    assert second.get("greeting") == "hello"
    assert second._cache is first._cache
    assert second._cache.get_client() is first._cache.get_client(write=True)


def test_async_reads_see_what_was_stored_on_every_event_loop(redis_url):
    cache = new_cache(redis_url)

    async def reads() -> list:
        return [
            await cache.aget("session"),
            await cache.aget("count"),
            await cache.aget("missing", "the default"),
            await cache.aget("versioned", version=2),
            await cache.aget("versioned"),
        ]

    assert asyncio.run(reads()) == [None, None, "the default", None, None]
    assert not cache._cache._clients  # awaited on redis-py's asyncio client, not in a thread
    cache.set("session", {"_auth_user_id": "7"})
    cache.set("count", 3)  # stored unpickled, as Django stores integers
    cache.set("versioned", "second", version=2)
    for _ in range(2):  # each event loop its own client (tests run several)
        assert asyncio.run(reads()) == [{"_auth_user_id": "7"}, 3, "the default", "second", None]


def test_async_reads_on_one_event_loop_share_a_connection(redis_url):
    cache, store = new_cache(redis_url), redis.Redis.from_url(redis_url)

    async def reads() -> None:
        for _ in range(20):
            await cache.aget("session")

    before = connections_received(store)
    asyncio.run(reads())
    assert connections_received(store) - before <= 2  # not one per read


def test_an_async_read_after_redis_dropped_its_connection_reads_again(redis_url):
    name = f"test-{uuid.uuid4().hex}"
    cache, store = new_cache(redis_url, name), redis.Redis.from_url(redis_url)
    cache.set("session", "kept")

    async def read_drop_read() -> tuple:
        first = await cache.aget("session")  # the loop's client now holds a connection
        for connection in store.client_list():  # only this client's: Redis is shared
            if connection["name"] == name:
                store.client_kill_filter(_id=connection["id"])
        return first, await cache.aget("session")

    assert asyncio.run(read_drop_read()) == ("kept", "kept")


def test_a_process_without_redis_does_not_import_redis_py():
    # The pool lives in a module of its own: importing redis-py cost about 60 ms of a
    # process's first request, for nothing.
    # Set up as chatsite/asgi.py does (settings, the URLconf with every view), without its
    # start-up recovery, which would touch the database the environment names.
    code = (
        "import sys, django; django.setup(); from django.urls import get_resolver; "
        "get_resolver().url_patterns; from django.core.cache import caches; "
        "caches['default']; print('redis' in sys.modules)"
    )
    env = {name: value for name, value in os.environ.items() if name != "REDIS_URL"}
    env["DJANGO_SETTINGS_MODULE"] = "chatsite.settings"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "False"
