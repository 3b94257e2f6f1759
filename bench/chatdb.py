"""The benchmark's own chatsite database: a fresh SQLite file, users, sessions, conversations.

The benchmark process uses Django against the same file the chatsite server processes use,
and writes only between scenarios, never while one is measured.
"""

import os
import secrets
from pathlib import Path

MODEL = "bench"
USERS = 50


def server_env(database: Path, stub_port: int, query_dir: Path, max_streams: int) -> dict:
    """Environment for chatsite's server processes (and for this one, before Django starts)."""
    return {
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        "DATABASE_URL": f"sqlite:///{database}",
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


def prepare(database: Path) -> list[tuple[object, str]]:
    """Create and migrate the database; return (user, session key) pairs to log in with."""
    os.environ.update(server_env(database, 9, database.parent, 0))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    user_model = get_user_model()
    users = user_model.objects.bulk_create(
        user_model(username=f"bench{i}", password="!unusable") for i in range(USERS)
    )
    logins = []
    for user in user_model.objects.filter(pk__in=[u.pk for u in users]):
        session = SessionStore()
        session["_auth_user_id"] = str(user.pk)
        session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        session["_auth_user_hash"] = user.get_session_auth_hash()
        session.create()
        logins.append((user, session.session_key))
    return logins


def new_conversations(logins: list[tuple[object, str]], count: int) -> list[tuple[str, str]]:
    """`count` empty conversations, owners taken in turn: (conversation id, session key)."""
    from conversations.models import Conversation

    owners = [logins[i % len(logins)] for i in range(count)]
    created = Conversation.objects.bulk_create(
        Conversation(owner=user, model=f"openai:{MODEL}") for user, _ in owners
    )
    return [
        (str(conversation.pk), session_key)
        for conversation, (_, session_key) in zip(created, owners, strict=True)
    ]


def csrf_token() -> str:
    return secrets.token_hex(16)
