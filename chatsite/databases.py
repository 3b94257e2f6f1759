"""The database settings.py uses: DATABASE_URL (PostgreSQL in production), else SQLite."""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from chatsite.env import env_bool, env_int, env_str

SQLITE_CONNECTION_SECONDS = 600


def database_settings(base_dir: Path) -> dict:
    """DATABASE_URL when set (PostgreSQL in production), else SQLite in the project folder."""
    url = env_str("DATABASE_URL")
    if url:
        try:
            database = dj_database_url.parse(url, conn_max_age=0)
        except ValueError as error:  # an unknown scheme, a port that is no number
            message = f"DATABASE_URL is not a database URL chatsite can use ({error})"
            raise ImproperlyConfigured(message) from None
        if database["ENGINE"] == "django.db.backends.postgresql":
            if env_bool("DATABASE_POOL"):
                database.setdefault("OPTIONS", {})["pool"] = True
            # One test database per run, so two runs on one server never collide.
            database["TEST"] = {"NAME": f"test_{database['NAME']}_{os.getpid()}"}
    else:
        database = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": base_dir / "db.sqlite3",
        }
    if database["ENGINE"] == "django.db.backends.sqlite3":
        # Django's backend, with the process's writers queued (chatsite/sqlite3/base.py).
        database["ENGINE"] = "chatsite.sqlite3"
        # WAL lets readers and the writer work at once; IMMEDIATE plus a busy timeout turns
        # "database is locked" into a short wait when two writers meet.
        database.setdefault("OPTIONS", {}).update(
            {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": env_int("SQLITE_BUSY_TIMEOUT", 20),
            }
        )
        # A file (not memory) so the test suite's server processes share it; one per run.
        test_db = base_dir / ".test-artifacts" / f"test-db-{os.getpid()}.sqlite3"
        database["TEST"] = {"NAME": str(test_db)}
    # Connections belong to threads, and request threads are kept and lent only while sync
    # code runs (chatsite/request_threads.py). A SQLite connection (0.7 ms to open) stays with
    # its kept thread; a PostgreSQL one is closed when its thread is given back, so idle
    # threads hold no server connection (DATABASE_POOL makes opening them cheap).
    is_sqlite = database["ENGINE"] == "chatsite.sqlite3"
    database["CONN_MAX_AGE"] = SQLITE_CONNECTION_SECONDS if is_sqlite else 0
    return database
