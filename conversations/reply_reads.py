"""The two reads of every message POST before its reply's first token, SQL written once.

- `owned_conversation`: what get_for_user(Conversation, user, pk, related=["owner__budget"])
  reads: the conversation if `user` owns it, with the owner's budget or none.
- `history_rows`: the conversation's messages up to the one a reply answers, oldest first,
  for the provider request (reply_job.load_job).

Compiled by Django each time, the two took 0.8 ms of the POST's 2.3 (bench/; sql_once.py
says how they are built instead).
"""

import functools
from datetime import datetime
from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser
from django.db import connections, router

from conversations.models import Conversation, Message, UserBudget
from conversations.sql_once import Table, column, db_value


class OwnedConversationQuery:
    """One database's statement: a conversation by id and owner, with the owner's budget."""

    def __init__(self, using: str) -> None:
        self.using = using
        connection = connections[using]
        q = connection.ops.quote_name
        self.conversations = Table(Conversation, "c", connection)
        self.budgets = Table(UserBudget, "b", connection)
        self.sql = (
            f"SELECT {self.conversations.select(q)}, {self.budgets.select(q)}"
            f" FROM {q(Conversation._meta.db_table)} c"
            f" LEFT OUTER JOIN {q(UserBudget._meta.db_table)} b"
            f" ON b.{column(UserBudget, 'user', q)} = c.{column(Conversation, 'owner', q)}"
            f" WHERE c.{column(Conversation, 'id', q)} = %s"
            f" AND c.{column(Conversation, 'owner', q)} = %s"
        )

    def __call__(self, user: AbstractBaseUser, pk: UUID) -> Conversation | None:
        params = [
            db_value(Conversation, "id", pk, self.using),
            db_value(Conversation, "owner", user.pk, self.using),
        ]
        with connections[self.using].cursor() as cursor:  # this thread's connection
            cursor.execute(self.sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        conversation = self.conversations.instance(row, 0, self.using)
        conversation.owner = user  # the owner is the user asking
        # As select_related leaves it: no budget row is a cached "none", not a query later.
        budget = self.budgets.instance(row, len(self.conversations.columns), self.using)
        UserBudget._meta.get_field("user").remote_field.set_cached_value(user, budget)
        return conversation


@functools.cache
def history_sql(using: str) -> str:
    """One database's statement: a conversation's messages up to a time, but one."""
    q = connections[using].ops.quote_name
    names = ("id", "role", "content", "parent", "created_at", "chosen_at")
    return (
        f"SELECT {', '.join(f'm.{column(Message, name, q)}' for name in names)}"
        f" FROM {q(Message._meta.db_table)} m"
        f" WHERE m.{column(Message, 'conversation', q)} = %s"
        f" AND m.{column(Message, 'created_at', q)} <= %s"
        f" AND NOT (m.{column(Message, 'id', q)} = %s)"
        f" ORDER BY m.{column(Message, 'created_at', q)} ASC"
    )


@functools.cache
def owned_conversation_query(using: str) -> OwnedConversationQuery:
    return OwnedConversationQuery(using)


def owned_conversation(user: AbstractBaseUser, pk: UUID) -> Conversation | None:
    """Conversation `pk` if `user` owns it, with `user`'s budget loaded; else None."""
    return owned_conversation_query(router.db_for_read(Conversation))(user, pk)


def history_rows(conversation_id: UUID, until: datetime, but: UUID) -> list[tuple]:
    """(id, role, content, parent id, created_at, chosen_at) of the conversation's messages
    created up to `until`, oldest first, without message `but`. Values are as the database
    returns them: compare them only with each other."""
    using = router.db_for_read(Message)
    params = [
        db_value(Message, "conversation", conversation_id, using),
        db_value(Message, "created_at", until, using),
        db_value(Message, "id", but, using),
    ]
    with connections[using].cursor() as cursor:
        cursor.execute(history_sql(using), params)
        return cursor.fetchall()
