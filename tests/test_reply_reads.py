"""The message POST's reads (conversations/reply_reads.py) read what the ORM's QuerySets read:
the owned conversation with its owner's budget, and the history up to a message, oldest
first; another user's conversation is not found."""

from datetime import timedelta
from uuid import UUID, uuid4

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations.models import Conversation, Message, UserBudget
from conversations.reply_reads import history_rows, owned_conversation
from tests.chats import add_chat
from tests.rows import assert_same_row, fields


def orm_read(user, pk) -> Conversation:
    return Conversation.objects.for_user(user).select_related("owner__budget").get(pk=pk)


def assert_read_as_the_orm_reads(user, pk) -> Conversation:
    expected = orm_read(user, pk)
    with CaptureQueriesContext(connection) as queries:
        conversation = owned_conversation(user, pk)
        owner = conversation.owner
    assert len(queries) == 1  # the owner is the user asking; the budget came along
    assert_same_row(conversation, expected)
    assert owner is user
    return conversation


def test_a_conversation_is_read_with_its_owners_budget_as_the_orm_reads_them(alice, bob):
    UserBudget.objects.create(user=alice, tokens_per_day=500, requests_per_minute=None)
    UserBudget.objects.create(user=bob, tokens_per_day=9, requests_per_minute=9)
    conversation = add_chat(alice, "Mine")
    add_chat(bob, "Bob's")
    read = assert_read_as_the_orm_reads(alice, conversation.pk)
    with CaptureQueriesContext(connection) as queries:
        assert fields(read.owner.budget) == fields(orm_read(alice, conversation.pk).owner.budget)
    assert len(queries) == 1  # only orm_read's: the budget came with the conversation


def test_an_owner_without_a_budget_is_known_to_have_none_without_another_query(alice):
    conversation = add_chat(alice, "Mine")
    read = assert_read_as_the_orm_reads(alice, conversation.pk)
    with CaptureQueriesContext(connection) as queries:
        assert not hasattr(read.owner, "budget")  # UserBudget.DoesNotExist, as select_related
    assert len(queries) == 0


def test_another_users_or_an_unknown_conversation_is_not_found(alice, charlie):
    alices = add_chat(alice, "Private")
    UserBudget.objects.create(user=alice, tokens_per_day=5)
    assert owned_conversation(charlie, alices.pk) is None
    assert owned_conversation(alice, uuid4()) is None
    assert owned_conversation(alice, alices.pk).pk == alices.pk


def as_uuids(rows: list[tuple]) -> list[tuple]:
    """Ids as UUIDs, whichever form the database gave them in (text on SQLite); no times."""
    return [
        (UUID(str(pk)), role, content, parent and UUID(str(parent)))
        for pk, role, content, parent, _, _ in rows
    ]


def test_the_history_is_the_conversations_messages_up_to_a_time_oldest_first(alice, bob):
    conversation = Conversation.objects.create(owner=alice)
    start = timezone.now() - timedelta(minutes=10)

    def add(minute: int, role: str, content: str, parent=None, status="complete") -> Message:
        when = start + timedelta(minutes=minute)
        return conversation.messages.create(
            role=role, content=content, parent=parent, created_at=when, status=status
        )

    # Created out of order: the rows come by time, not by insertion.
    later = add(5, "user", "Later")
    first = add(1, "user", "First")
    system = add(0, "system", "Be brief")
    answer = add(2, "assistant", "One", parent=first)
    Message.objects.filter(pk=answer.pk).update(chosen_at=start + timedelta(minutes=7))
    reply = add(5, "assistant", "", later, "pending")  # the reply being prepared: left out
    add(6, "user", "After")  # after `until`: left out
    elsewhere = add_chat(bob, "Elsewhere").messages.all()  # another conversation: left out
    elsewhere.update(created_at=start + timedelta(minutes=3))
    expected = list(
        Message.objects.filter(conversation=conversation, created_at__lte=later.created_at)
        .exclude(pk=reply.pk)
        .order_by("created_at")
        .values_list("id", "role", "content", "parent_id")
    )
    rows = as_uuids(history_rows(conversation.pk, later.created_at, reply.pk))
    assert rows == expected
    assert [row[2] for row in rows] == ["Be brief", "First", "One", "Later"]
    assert rows[2][3] == rows[1][0] == first.pk and system.pk == rows[0][0] == expected[0][0]
    assert answer.pk == rows[2][0]
    # Times as the database gives them, each comparable with the others: chosen after made.
    history = history_rows(conversation.pk, later.created_at, reply.pk)
    assert [row[4] for row in history] == sorted(row[4] for row in history)
    assert [row[5] is None for row in history] == [True, True, False, True]
    assert history[2][5] > history[3][4] > history[2][4]
