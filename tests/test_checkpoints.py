"""Checkpoints: running replies' partial text saved together, never over a final reply."""

from conversations.completion import PartialReply, checkpoint_replies
from conversations.models import Message
from tests.chats import add_chat


def reply_for(user, status: str = "pending", content: str = "") -> Message:
    conversation = add_chat(user, "Chat", status=status, content=content)
    return conversation.messages.get(role="assistant")


def test_checkpoints_save_each_running_replys_text_and_status(alice):
    streaming = reply_for(alice)
    thinking = reply_for(alice)
    waiting = reply_for(alice)

    checkpoint_replies(
        [
            PartialReply(streaming.pk, "Half a ré—plý 😀", "", streaming=True),
            PartialReply(thinking.pk, "", "Let me think", streaming=True),
            PartialReply(waiting.pk, "", "", streaming=False),
        ]
    )

    streaming.refresh_from_db()
    thinking.refresh_from_db()
    waiting.refresh_from_db()
    assert (streaming.status, streaming.content) == ("streaming", "Half a ré—plý 😀")
    assert (thinking.status, thinking.reasoning) == ("streaming", "Let me think")
    assert waiting.status == "pending"  # no first token yet: it does not show as streaming
    assert None not in (streaming.heartbeat_at, thinking.heartbeat_at, waiting.heartbeat_at)


def test_a_checkpoint_never_overwrites_a_finished_reply(alice):
    stopped = reply_for(alice, status="stopped", content="Stopped here")
    running = reply_for(alice)

    ended = checkpoint_replies(
        [
            PartialReply(stopped.pk, "Stopped here and more", "", streaming=True),
            PartialReply(running.pk, "Still going", "", streaming=True),
        ]
    )

    stopped.refresh_from_db()
    assert (stopped.status, stopped.content, stopped.heartbeat_at) == (
        "stopped",
        "Stopped here",
        None,
    )
    assert Message.objects.get(pk=running.pk).content == "Still going"
    assert ended == {stopped.pk}  # its producer is told to stop reading


def test_a_checkpoint_reports_a_reply_deleted_with_its_conversation(alice):
    deleted = reply_for(alice)
    running = reply_for(alice)
    deleted.conversation.delete()

    ended = checkpoint_replies(
        [
            PartialReply(deleted.pk, "Gone", "", streaming=True),
            PartialReply(running.pk, "Still going", "", streaming=True),
        ]
    )

    assert ended == {deleted.pk}
