"""The two reads behind a signed-in request the cache cannot answer, their SQL written once.

- `session_row`: what cached_db's SessionStore reads on a cache miss, the session by key if it
  has not expired (Django's `_get_session_from_db`).
- `user_row`: what ModelBackend.get_user reads, the user by primary key through the user
  model's default manager (auth.User's filters nothing).

A session is missed after a restart or once culled; a user's entry lasts USER_CACHE_SECONDS,
so someone who types for longer than that sends their message with a cold user. Compiled by
Django each time, each read took 0.5 ms against 0.05 to 0.07 for running it, in the message POST's
thread before anything else (bench/; conversations/sql_once.py says how they are built).
"""

import functools

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import connections, router
from django.db.models import Model
from django.utils import timezone

from conversations.sql_once import Table, column, db_value


class RowQuery:
    """One model's rows by one column's value (and, optionally, a time still to come)."""

    def __init__(self, model: type[Model], key: str, not_before: str, using: str) -> None:
        self.model, self.key, self.not_before, self.using = model, key, not_before, using
        connection = connections[using]
        q = connection.ops.quote_name
        self.table = Table(model, "t", connection)
        self.sql = (
            f"SELECT {self.table.select(q)} FROM {q(model._meta.db_table)} t"
            f" WHERE t.{column(model, key, q)} = %s"
        )
        if not_before:
            self.sql += f" AND t.{column(model, not_before, q)} > %s"

    def __call__(self, value: object) -> Model | None:
        params = [db_value(self.model, self.key, value, self.using)]
        if self.not_before:
            params.append(db_value(self.model, self.not_before, timezone.now(), self.using))
        with connections[self.using].cursor() as cursor:  # this thread's connection
            cursor.execute(self.sql, params)
            row = cursor.fetchone()
        return None if row is None else self.table.instance(row, 0, self.using)


@functools.cache
def row_query(model: type[Model], key: str, not_before: str, using: str) -> RowQuery:
    return RowQuery(model, key, not_before, using)


def session_row(model: type[AbstractBaseSession], session_key: str | None) -> Model | None:
    """The session with this key, unless it has expired."""
    if session_key is None:
        return None  # the ORM's `session_key=None` matches no row either
    using = router.db_for_read(model)
    return row_query(model, "session_key", "expire_date", using)(session_key)


def user_row(user_id: object) -> AbstractBaseUser | None:
    """The user with this primary key, active or not (the backend decides)."""
    model = get_user_model()
    return row_query(model, model._meta.pk.name, "", router.db_for_read(model))(user_id)
