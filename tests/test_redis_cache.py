"""With REDIS_URL, sessions and users are cached in Redis: one pool of connections per process.

Django makes a cache object, and with it a Redis connection pool, for every request (each
runs in a context of its own: Django ticket #35651), so without a shared pool every request
opened a new connection to Redis, a TCP handshake and redis-py's setup commands before its
session could be read.
"""

import os
import subprocess
import sys
import uuid

import redis
from django.conf import settings


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
