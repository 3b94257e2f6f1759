"""A server shutting down stores its running replies as they stand (conversations/shutdown.py):
one its provider had finished is whole; the SIGTERM case through a real server is in
test_crash_recovery.py."""

import asyncio

from django.db import connections

from conversations import producers, relay
from conversations.models import Conversation, Message
from conversations.producers import PRODUCER_ID
from conversations.providers import http
from conversations.providers.registry import default_model
from conversations.recovery import INTERRUPTED_REASON
from conversations.relay import ReplyProducer, start_reply
from conversations.shutdown import outcome_at_exit, store_running_replies
from tests.replies import stub_job
from tests.stub import Gate, Script, openai_chunk, openai_usage, sse

HANG_GUARD_SECONDS = 30  # a failure, not a timing check


def test_a_reply_its_provider_finished_is_stored_whole_at_shutdown(alice, stub, monkeypatch):
    # Finished, it waits for the response's end before its own final write: a shutdown then
    # must not store it interrupted, nor leave it to recovery's last checkpoint.
    monkeypatch.setattr(relay, "END_OF_STREAM_SECONDS", 3600.0)  # it waits while we look
    stub.reset()
    gate = Gate()
    finished = [openai_chunk(""), openai_chunk("Whole"), openai_chunk(finish_reason="stop")]
    # Held open after [DONE], as a server slow to end its response.
    stub.queue(Script(steps=[*finished, openai_usage(11, 7), sse("[DONE]"), gate]))
    conversation = Conversation.objects.create(owner=alice, model=default_model().id)
    _, reply, _ = conversation.post_user_message("Hi", default_model(), None, PRODUCER_ID)

    async def shut_down_once_finished() -> int:
        await start_reply(reply, stub_job(reply, stub))
        async with asyncio.timeout(HANG_GUARD_SECONDS):
            while not any(p.finish for p in producers.running_producers()):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            stored, row = await asyncio.to_thread(store_then_close)  # as at exit, off the loop
            gate.open()  # its producer's own write then finds the reply final
            while producers.running_replies():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        await http.client().aclose()  # its kept connection must not outlive this loop
        return stored, row

    stored, row = asyncio.run(shut_down_once_finished())
    assert stored == 1
    assert (row.status, row.content, row.finish_reason) == ("complete", "Whole", "stop")
    assert (row.total_tokens, row.usage_source) == (18, "provider")
    reply.refresh_from_db()
    assert (reply.status, reply.content) == ("complete", "Whole")
    assert Message.objects.filter(conversation=conversation).count() == 2


def test_a_reply_being_stopped_is_stored_stopped_with_its_reason_and_any_other_interrupted(
    alice,
):
    conversation = Conversation.objects.create(owner=alice, model=default_model().id)
    _, reply, _ = conversation.post_user_message("Hi", default_model(), None, PRODUCER_ID)
    producer = ReplyProducer(reply)
    producer.parts = ["Half"]
    cut = outcome_at_exit(producer)
    assert (cut.status, cut.content, cut.error_code) == ("interrupted", "Half", "interrupted")
    assert cut.error == INTERRUPTED_REASON
    producer.cancel(producers.TOO_LONG, "Too long.")  # its stop not yet taken effect
    stopping = outcome_at_exit(producer)
    assert (stopping.status, stopping.error_code, stopping.error) == (
        "stopped",
        "too_long",
        "Too long.",
    )


def store_then_close() -> tuple[int, Message]:
    """store_running_replies in a thread of its own, and the reply as it then stored it, its
    database connection closed after (a session left open would keep the test database from
    being dropped)."""
    try:
        return store_running_replies(), Message.objects.get(role="assistant")
    finally:
        connections.close_all()
