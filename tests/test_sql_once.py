"""The message POST's INSERT and UPDATE (conversations/sql_once.py) store what bulk_create
and QuerySet.update store: the same values with the same types, in one statement each."""

from datetime import timedelta
from uuid import uuid4

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations import sql_once
from conversations.models import Conversation, Message
from conversations.providers.registry import default_model


def raw_row(model, pk, but: tuple[str, ...] = ()) -> dict:
    """The row as the database holds it (dates as SQLite's text, say), but columns `but`."""
    columns = [f.column for f in model._meta.concrete_fields if f.column not in but]
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(map(q, columns))} FROM {q(model._meta.db_table)}"
            f" WHERE {q(model._meta.pk.column)} = %s",
            [model._meta.pk.get_db_prep_value(pk, connection)],
        )
        return dict(zip(columns, cursor.fetchone(), strict=True))


def stored(message: Message) -> dict:
    """The message's row, but its own and its relations' ids (they differ between pairs)."""
    return raw_row(Message, message.pk, but=("id", "conversation_id", "parent_id", "client_id"))


def pair(conversation: Conversation, now) -> list[Message]:
    """A user message and its pending reply, with every kind of value a message holds."""
    asked = Message(
        created_at=now,
        conversation=conversation,
        role=Message.Role.USER,
        content="Grüße ✓ 'quoted' \"twice\"",
        status=Message.Status.COMPLETE,
        client_id=uuid4(),
        completed_at=now - timedelta(seconds=3),
        metadata={"options": {"temperature": 0.5, "stop": ["\n"]}, "n": None},
    )
    reply = Message(
        created_at=now,
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        parent=asked,
        provider="openai",
        model="openai:stub-model",
        prompt_tokens=7,
        heartbeat_at=now,
        producer="host:1:abc",
    )
    return [asked, reply]


def test_an_insert_stores_what_bulk_create_stores_in_one_statement(alice):
    now = timezone.now()
    by_orm = pair(Conversation.objects.create(owner=alice), now)
    Message.objects.bulk_create(by_orm)
    by_sql = pair(Conversation.objects.create(owner=alice), now)
    with CaptureQueriesContext(connection) as queries:
        sql_once.insert(by_sql, "default")
    assert len(queries) == 1
    for ours, django in zip(by_sql, by_orm, strict=True):
        assert ours._state.adding is False and ours._state.db == "default"
        assert stored(ours) == stored(django)  # the same text, numbers and JSON, as stored
    assert Message.objects.get(pk=by_sql[1].pk).parent_id == by_sql[0].pk
    assert Message.objects.get(pk=by_sql[0].pk).client_id == by_sql[0].client_id


def test_a_message_posts_insert_stays_within_psycopgs_cache_of_parsed_statements(alice):
    # psycopg parses a statement with more parameters anew every time it runs; the pair
    # leaves out the columns NULL in both rows, as the database stores NULL for them.
    conversation = Conversation.objects.create(owner=alice)
    with CaptureQueriesContext(connection) as queries:
        asked, reply, _ = conversation.post_user_message("Hi", default_model(), None, "host:1:x")
    insert = next(q["sql"] for q in queries if q["sql"].startswith("INSERT"))
    columns = insert[: insert.index(")")].count(",") + 1
    assert 2 * columns <= sql_once.PSYCOPG_CACHED_PARAMETERS
    assert Message.objects.get(pk=asked.pk).completion_tokens is None  # left out: NULL
    assert Message.objects.get(pk=reply.pk).parent_id == asked.pk


def test_an_update_sets_what_queryset_update_sets_on_that_row_only(alice):
    mine, by_orm, other = (Conversation.objects.create(owner=alice, title="Old") for _ in range(3))
    when = timezone.now() + timedelta(minutes=5)
    values = {"updated_at": when, "model": "openai:stub-other", "title": "Néw"}
    with CaptureQueriesContext(connection) as queries:
        assert sql_once.update(Conversation, mine.pk, values, "default") == 1
    assert len(queries) == 1
    Conversation.objects.filter(pk=by_orm.pk).update(**values)
    ours, django = (raw_row(Conversation, c.pk, but=("id", "created_at")) for c in (mine, by_orm))
    assert ours == django  # the same text and numbers, as stored
    mine.refresh_from_db()
    assert (mine.updated_at, mine.model, mine.title) == (when, "openai:stub-other", "Néw")
    other.refresh_from_db()
    assert (other.title, other.model) == ("Old", "")
    assert sql_once.update(Conversation, uuid4(), values, "default") == 0
