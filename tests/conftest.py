"""Fixtures: the provider stub, a real chatsite server process, three users, and alice's API
key with OpenAI's SDK using it.

alice owns things, bob is staff, charlie must never get anything of alice's.
"""

import asyncio
import os
import time
from collections.abc import Iterator

import openai
import pytest
import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.db import connections

from conversations.apikeys import create_key
from conversations.models import Message
from tests.client import ChatClient
from tests.servers import ARTIFACTS, ServerProcess
from tests.stub_server import ProviderStub


@pytest.fixture(scope="session")
def stub() -> Iterator[ProviderStub]:
    provider = ProviderStub().start()
    yield provider
    provider.stop()


@pytest.fixture(scope="session", autouse=True)
def background_connections_closed(django_db_setup) -> Iterator[None]:
    """Producers some tests run in this process keep a connection on asgiref's thread for
    sync code (conversations/background_db.py): closed before the test database is dropped,
    which PostgreSQL refuses while a session uses it (the database was left behind)."""
    yield
    asyncio.run(sync_to_async(connections.close_all, thread_sensitive=True)())


@pytest.fixture(scope="session")
def live_server_process(django_db_setup, django_db_blocker, stub) -> Iterator[ServerProcess]:
    server = ServerProcess(stub.url).start()
    yield server
    server.stop()


@pytest.fixture
def server(live_server_process, stub, transactional_db) -> Iterator[ServerProcess]:
    """The shared server, with a clean stub and a clean (transactional) database."""
    stub.reset()
    yield live_server_process
    # The shared server outlives the test: let its replies finish before the database is
    # emptied, or a reply's last write would race the flush (a deadlock on PostgreSQL).
    stub.release()
    wait_until_replies_settle()


def wait_until_replies_settle(timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while Message.objects.active_replies().exists():
        if time.monotonic() > deadline:
            active = list(Message.objects.active_replies().values_list("id", "status"))
            raise AssertionError(f"replies still generating after the test: {active}")
        time.sleep(0.02)


@pytest.fixture
def start_server(stub, transactional_db) -> Iterator:
    """Start a dedicated server process with extra settings: start_server(NAME="value")."""
    started: list[ServerProcess] = []

    def start(**env: str) -> ServerProcess:
        started.append(ServerProcess(stub.url, **env).start())
        return started[-1]

    stub.reset()
    yield start
    for process in started:
        process.stop()


def service_missing(message: str) -> None:
    """Scaling tests need PostgreSQL or Redis: in CI a missing service fails, locally it skips."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_timeout=2).ping()
    except (redis.RedisError, OSError) as error:
        service_missing(f"Redis is needed at {url} (TEST_REDIS_URL): {error}")
    return url


def make_user(username: str, **extra: object):
    return get_user_model().objects.create_user(
        username=username, password=f"{username}-password", **extra
    )


@pytest.fixture
def alice(transactional_db):
    return make_user("alice")


@pytest.fixture
def bob(transactional_db):
    return make_user("bob", is_staff=True)


@pytest.fixture
def charlie(transactional_db):
    return make_user("charlie")


def session_for(user) -> str:
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = settings.AUTHENTICATION_BACKENDS[-1]  # the one that logs in
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()
    return session.session_key


@pytest.fixture
def client_for(server) -> Iterator:
    """client_for(user) -> a ChatClient logged in as that user (None: anonymous)."""
    clients: list[ChatClient] = []

    def make(user, base_url: str | None = None) -> ChatClient:
        session, password = (
            (session_for(user), f"{user.username}-password") if user else (None, None)
        )
        clients.append(ChatClient(base_url or server.url, session, password=password))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def alice_client(client_for, alice) -> ChatClient:
    return client_for(alice)


@pytest.fixture
def charlie_client(client_for, charlie) -> ChatClient:
    return client_for(charlie)


@pytest.fixture
def alice_key(alice) -> str:
    return create_key(alice, "sdk")[1]


@pytest.fixture
def sdk(server, alice_key):
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=alice_key, max_retries=0) as client:
        yield client


def pytest_configure(config) -> None:
    ARTIFACTS.mkdir(exist_ok=True)  # the SQLite test database and server logs live here


@pytest.fixture
def key_client(server):
    """key_client(secret, base_url=None) -> a ChatClient that sends only `Bearer <secret>`."""
    clients: list[ChatClient] = []

    def make(secret: str, base_url: str | None = None) -> ChatClient:
        clients.append(ChatClient(base_url or server.url, None, api_key=secret))
        return clients[-1]

    yield make
    for client in clients:
        client.close()
