"""The benchmark's own chatsite databases: users, sessions and conversations to post to.

SQLite (a fresh file) serves the one-worker scenarios, as chatsite runs by default. Several
workers run as chatsite is deployed past one process: PostgreSQL (a fresh database on the
server BENCH_POSTGRES_URL names, dropped afterwards) and Redis. The benchmark process uses
Django against both (PostgreSQL as the alias "postgres") and writes only between
scenarios, never while one is measured.
"""

import os
import secrets
from datetime import datetime, timedelta
from pathlib import Path

MODEL = "bench"
USERS = 50
POSTGRES = "postgres"  # the benchmark process's alias for the PostgreSQL database
POSTGRES_SERVER = os.environ.get(
    "BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)

type Login = tuple[object, str, str]  # (user, session key, API key)


def server_env(database_url: str, stub_port: int, query_dir: Path, max_streams: int) -> dict:
    """Environment for chatsite's server processes (and for this one, before Django starts)."""
    return {
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "bench-not-secret-" + "x" * 40,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{stub_port}/v1",
        "OPENAI_API_KEY": "sk-bench",
        "OPENAI_MODELS": MODEL,
        # Every stream needs its own upstream connection: the pool must hold them all.
        "PROVIDER_MAX_CONNECTIONS": str(max_streams + 100),
        "BENCH_QUERY_DIR": str(query_dir),
        "LOG_LEVEL": "INFO",  # daphne's "Listening on" line tells that a worker is up
    }


def sqlite_url(database: Path) -> str:
    return f"sqlite:///{database}"


def prepare(database: Path) -> list[Login]:
    """Start Django on a new SQLite database, migrate it; return logins to post with."""
    os.environ.update(server_env(sqlite_url(database), 9, database.parent, 0))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return users_and_sessions("default")


def create_postgres_database() -> str | None:
    """A new empty database on the benchmark's PostgreSQL server; its URL, None if unreachable."""
    import psycopg

    name = f"chatsite_bench_{os.getpid()}"
    try:
        with psycopg.connect(POSTGRES_SERVER, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError:
        return None
    return POSTGRES_SERVER.rsplit("/", 1)[0] + "/" + name


def drop_postgres_database(url: str) -> None:
    import psycopg
    from django.db import connections

    connections[POSTGRES].close()
    with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def prepare_postgres(url: str) -> list[Login]:
    """Add the PostgreSQL database as the alias "postgres", migrate it; return its logins."""
    import dj_database_url
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    databases = {"default": settings.DATABASES["default"], POSTGRES: dj_database_url.parse(url)}
    connections.settings[POSTGRES] = connections.configure_settings(databases)[POSTGRES]
    call_command("migrate", database=POSTGRES, verbosity=0, interactive=False)
    return users_and_sessions(POSTGRES)


def users_and_sessions(using: str) -> list[Login]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from conversations.apikeys import hash_secret
    from conversations.models import ApiKey

    user_model = get_user_model()
    users = user_model.objects.using(using).bulk_create(
        user_model(username=f"bench{i}", password="!unusable") for i in range(USERS)
    )
    logins = []
    for user in user_model.objects.using(using).filter(pk__in=[u.pk for u in users]):
        data = {
            "_auth_user_id": str(user.pk),
            "_auth_user_backend": settings.AUTHENTICATION_BACKENDS[-1],  # axes only checks
            "_auth_user_hash": user.get_session_auth_hash(),
        }
        session = Session.objects.using(using).create(
            session_key=secrets.token_hex(16),
            session_data=SessionStore().encode(data),
            expire_date=timezone.now() + timedelta(days=1),
        )
        secret = f"cs_bench{secrets.token_hex(16)}"
        ApiKey.objects.using(using).create(user=user, key_hash=hash_secret(secret))
        logins.append((user, session.session_key, secret))
    return logins


def new_conversations(logins: list[Login], count: int, using: str = "default") -> list[tuple]:
    """`count` empty conversations, owners taken in turn: (conversation id, session key)."""
    from conversations.models import Conversation

    owners = [logins[i % len(logins)] for i in range(count)]
    created = Conversation.objects.using(using).bulk_create(
        Conversation(owner=user, model=f"openai:{MODEL}") for user, _, _ in owners
    )
    return [
        (str(conversation.pk), session_key)
        for conversation, (_, session_key, _) in zip(created, owners, strict=True)
    ]


def reply_seconds(since: datetime, using: str = "default") -> float | None:
    """How long the replies begun since `since` lasted, on average: from the message POST that
    made each to its end, the span its checkpoints (one a second) fall in. None: none ended."""
    from conversations.models import Message

    spans = Message.objects.using(using).filter(
        role=Message.Role.ASSISTANT, created_at__gte=since, completed_at__isnull=False
    )
    lives = [
        (end - start).total_seconds()
        for start, end in spans.values_list("created_at", "completed_at")
    ]
    return sum(lives) / len(lives) if lives else None


def api_keys(logins: list[Login], count: int) -> list[str]:
    """`count` API keys' secrets, owners taken in turn (the /v1 endpoint makes conversations)."""
    return [logins[i % len(logins)][2] for i in range(count)]


def csrf_token() -> str:
    return secrets.token_hex(16)
