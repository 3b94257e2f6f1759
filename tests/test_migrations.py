"""Migrations that move data, run forwards over rows stored under the schema before them."""

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = ("conversations", "0004_conversation_system_prompt")
REPLY_PROMPTS = ("conversations", "0005_message_system_prompt")


def migrate_to(target: tuple[str, str]):
    """The database migrated to `target`; the models as they were there."""
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    executor.loader.build_graph()
    return executor.loader.project_state([target]).apps


def migrated_back_to(target: tuple[str, str]) -> Iterator:
    """For a fixture: the database at `target` (its models) for the test, at the latest after."""
    yield migrate_to(target)
    executor = MigrationExecutor(connection)
    migrate_to(*executor.loader.graph.leaf_nodes("conversations"))  # as the other tests need


@pytest.fixture
def migrated_back(transactional_db):
    yield from migrated_back_to(BEFORE)


def test_replies_stored_before_keep_the_prompt_their_exports_showed(migrated_back, alice):
    Conversation = migrated_back.get_model("conversations", "Conversation")
    Message = migrated_back.get_model("conversations", "Message")
    now = timezone.now()

    def conversation_with(*, system: tuple[str, ...] = (), **fields: str):
        conversation = Conversation.objects.create(owner_id=alice.pk, model="m", **fields)
        rows = [("system", text) for text in system] + [("user", "Hi"), ("assistant", "Hey")]
        for offset, (role, text) in enumerate(rows):
            created_at = now + timedelta(microseconds=offset)
            Message.objects.create(
                conversation=conversation, role=role, content=text, created_at=created_at
            )
        return conversation.pk

    expected = {
        conversation_with(system_prompt="Be kind."): "Be kind.",
        conversation_with(source="api", system=("Be terse.", "Use lists.")): (
            "Be terse.\n\nUse lists."
        ),
        conversation_with(source="api", system=("Be terse.",), system_prompt="Be kind."): (
            "Be kind."
        ),
        conversation_with(): "",
    }

    migrated = migrate_to(REPLY_PROMPTS).get_model("conversations", "Message")
    replies = migrated.objects.filter(role="assistant")
    assert dict(replies.values_list("conversation_id", "system_prompt")) == expected
    others = migrated.objects.exclude(role="assistant")
    assert set(others.values_list("system_prompt", flat=True)) == {""}


ORDER_TIES = ("conversations", "0007_conversation_order_ties")
REPLIES_AS_NOW = ("conversations", "0008_replies_stored_as_now")


@pytest.fixture
def before_replies_as_now(transactional_db):
    yield from migrated_back_to(ORDER_TIES)


def test_replies_stored_before_no_longer_name_the_server(before_replies_as_now, alice):
    Conversation = before_replies_as_now.get_model("conversations", "Conversation")
    Message = before_replies_as_now.get_model("conversations", "Message")
    conversation = Conversation.objects.create(owner_id=alice.pk, model="m")

    def reply(status: str, finish_reason: str, metadata: dict) -> object:
        return Message.objects.create(
            conversation=conversation, role="assistant", status=status,
            finish_reason=finish_reason, metadata=metadata, producer="vm:123:abc",
        )  # fmt: skip

    named = reply("complete", "stop", {"attempts": [], "producer": "vm:123:abc"})
    cut = reply("interrupted", "", {"producer": "vm:123:abc"})
    stopped = reply("stopped", "stopped", {"attempts": [{"attempt": 1}]})

    migrated = migrate_to(REPLIES_AS_NOW).get_model("conversations", "Message")
    stored = {m.pk: (m.status, m.finish_reason, m.metadata) for m in migrated.objects.all()}
    assert stored == {
        named.pk: ("complete", "stop", {"attempts": []}),
        cut.pk: ("interrupted", "interrupted", {}),
        stopped.pk: ("stopped", "stopped", {"attempts": [{"attempt": 1}]}),
    }
    assert set(migrated.objects.values_list("producer", flat=True)) == {"vm:123:abc"}
