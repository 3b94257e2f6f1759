"""With REDIS_URL, sessions and users are cached in Redis: one pool of connections per process.

Django makes a cache object, and with it a Redis connection pool, for every request (each
runs in a context of its own: Django ticket #35651), so without a shared pool every request
opened a new connection to Redis, a TCP handshake and redis-py's setup commands before its
session could be read.
"""

import uuid

import redis


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
