"""Migrations that move data, run forwards over rows stored under the schema before them."""

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


@pytest.fixture
def migrated_back(transactional_db):
    yield migrate_to(BEFORE)
    executor = MigrationExecutor(connection)
    migrate_to(*executor.loader.graph.leaf_nodes("conversations"))  # as the other tests need


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
