"""Checkpoints: running replies' partial text saved together, never over a final reply."""

from conversations.completion import PartialReply, ReplyOutcome, checkpoint_replies, finish_reply
from conversations.models import Message
from conversations.providers.base import Usage
from conversations.recovery import end_without_producer
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


def test_a_producer_with_its_whole_reply_stores_it_over_what_recovery_gave_it(alice):
    # Recovery on another host took it for gone while its final write waited for the
    # database: interrupted at its last checkpoint, with an estimate. The producer has the
    # whole text and the provider's usage.
    reply = running_reply(alice, "Half")
    assert end_without_producer(reply, Message.Status.INTERRUPTED)
    assert checkpoint_replies([PartialReply(reply.pk, "Half an", "", streaming=True)]) == {
        reply.pk
    }  # a producer still reading stops: its reply is ended

    stored = finish_reply(reply, whole("Half an answer"))
    assert stored is not None and stored.status == "complete"
    row = Message.objects.get(pk=reply.pk)
    assert (row.status, row.content, row.error_code) == ("complete", "Half an answer", "")
    assert (row.total_tokens, row.usage_source) == (13, "provider")
    assert finish_reply(reply, whole("Once more")) is None  # whole now: final


def test_a_reply_ended_without_its_producer_stays_so_unless_recovery_took_a_whole_one(alice):
    # A stop on another process its producer did not answer in time stands, even should the
    # whole reply come after it; so does recovery's interrupted, short of a whole reply.
    stopped = running_reply(alice, "Almost")
    assert end_without_producer(stopped, Message.Status.STOPPED)
    assert finish_reply(stopped, whole("Almost done")) is None
    assert Message.objects.get(pk=stopped.pk).status == "stopped"
    interrupted = running_reply(alice, "Almost")
    assert end_without_producer(interrupted, Message.Status.INTERRUPTED)
    failed = ReplyOutcome(status="failed", content="Almost", error_code="connection_error")
    assert finish_reply(interrupted, failed) is None
    assert Message.objects.get(pk=interrupted.pk).status == "interrupted"


def test_a_whole_reply_is_not_stored_over_recovery_once_the_conversation_went_on(alice):
    # Its owner, told it was interrupted, sent another message, asked with the cut text: the
    # stored conversation stays as the model was asked it.
    reply = running_reply(alice, "Half")
    assert end_without_producer(reply, Message.Status.INTERRUPTED)
    conversation = reply.conversation
    conversation.messages.create(role="user", status="complete", content="Go on?")
    assert finish_reply(reply, whole("Half an answer")) is None
    assert Message.objects.get(pk=reply.pk).content == "Half"


def test_a_reply_its_producer_stored_is_never_stored_again(alice):
    # A producer writes once more only as failed, should its first write raise after all.
    unstorable = ReplyOutcome(status="failed", content="Mi", error_code="internal_error")
    for first in (ReplyOutcome(status="stopped", content="Mi"), whole("Mine")):
        reply = running_reply(alice, "")
        assert finish_reply(reply, first) is not None
        assert finish_reply(reply, unstorable) is None
        assert Message.objects.get(pk=reply.pk).status == first.status


def running_reply(user, content: str) -> Message:
    reply = reply_for(user, status="streaming", content=content)
    return Message.objects.select_related("parent").get(pk=reply.pk)


def whole(content: str) -> ReplyOutcome:
    usage = Usage(prompt_tokens=10, completion_tokens=3, total_tokens=13)
    return ReplyOutcome(status="complete", content=content, usage=usage, usage_source="provider")
