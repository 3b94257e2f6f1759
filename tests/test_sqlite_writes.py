"""SQLite: a process's writers queue on one lock per database file (chatsite/sqlite3/base.py),
held from BEGIN to COMMIT or ROLLBACK, and never kept by a transaction that failed."""

import threading

import pytest
from django.conf import settings
from django.db import IntegrityError, connection, transaction

from chatsite.sqlite3.base import write_lock
from conversations.models import Conversation, Message

pytestmark = pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
    reason="SQLite's one writer at a time; PostgreSQL locks rows",
)


def process_write_lock() -> threading.Lock:
    return write_lock(str(connection.settings_dict["NAME"]))


def test_a_transaction_holds_the_write_lock_until_it_commits(alice):
    with transaction.atomic():
        Conversation.objects.create(owner=alice, title="kept")
        assert process_write_lock().locked()
    assert not process_write_lock().locked()
    assert Conversation.objects.filter(title="kept").exists()


def test_a_transaction_that_fails_gives_the_write_lock_back(alice):
    with pytest.raises(ValueError), transaction.atomic():
        Conversation.objects.create(owner=alice, title="rolled back")
        raise ValueError("the view failed")
    assert not process_write_lock().locked()
    # A foreign key SQLite checks at COMMIT: the commit itself fails.
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(conversation_id="0" * 32, role="user", content="orphan")
    assert not process_write_lock().locked()
    assert not Conversation.objects.filter(title="rolled back").exists()


def test_a_second_writer_waits_for_the_first_and_then_writes(alice):
    conversation = Conversation.objects.create(owner=alice, title="first")
    written = threading.Event()

    def second_writer() -> None:
        try:
            with transaction.atomic():
                Conversation.objects.filter(pk=conversation.pk).update(title="second")
            written.set()
        finally:
            connection.close()

    with transaction.atomic():
        Conversation.objects.filter(pk=conversation.pk).update(title="first, again")
        writer = threading.Thread(target=second_writer)
        writer.start()
        assert not written.is_set()  # it cannot have begun: this transaction holds the lock
    writer.join()
    assert written.is_set()
    conversation.refresh_from_db()
    assert conversation.title == "second"
