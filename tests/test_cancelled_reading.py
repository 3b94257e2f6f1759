"""A producer cancelled by none of chatsite's stops: a library's stray cancellation stores its
reply as interrupted and frees its conversation; the server shutting down leaves the reply to
crash recovery. Either way the producer leaves the process's list and a stop waiting hears.
A reply stopped twice keeps the first stop's reason."""

import asyncio

import pytest

from conversations import producers
from conversations.models import Conversation, Message, ReplyInProgress
from conversations.producers import PRODUCER_ID
from conversations.providers import http
from conversations.providers.registry import default_model
from conversations.relay import start_reply
from tests.replies import stub_job
from tests.stub import Gate, gated_stream


def held_reply(alice, stub) -> tuple[Conversation, Message, Gate]:
    """A stored reply whose provider sends "Partial", then waits at the gate."""
    stub.reset()
    gate = Gate()
    stub.queue(gated_stream(["Partial"], gate))
    conversation = Conversation.objects.create(owner=alice, model=default_model().id)
    _, reply, _ = conversation.post_user_message("Hi", default_model(), None, PRODUCER_ID)
    return conversation, reply, gate


async def started_with_text(reply: Message, stub) -> producers.Producer:
    await start_reply(reply, stub_job(reply, stub))
    producer = producers._producers[reply.pk]
    async with asyncio.timeout(30):  # a hang guard, not a timing check
        while not producer.parts:  # noqa: ASYNC110 (its first text relayed)
            await asyncio.sleep(0.01)
    return producer


def test_a_reading_cancelled_by_no_stop_is_stored_interrupted_and_frees_its_conversation(
    alice, stub
):
    conversation, reply, gate = held_reply(alice, stub)

    async def cancel_its_reading() -> None:
        producer = await started_with_text(reply, stub)
        producer._reading.cancel()  # as a library raising CancelledError would: no stop asked
        async with asyncio.timeout(30):  # a hang guard: a stop would wait for this for good
            await producer.finished.wait()
            assert not await producers.stop_reply(reply.pk)  # not running here any more
        await http.client().aclose()  # its kept connection must not outlive this loop

    asyncio.run(cancel_its_reading())
    assert stub.requests[0].wait_disconnected()  # the provider stops generating
    gate.open()
    reply.refresh_from_db()
    assert (reply.status, reply.content, reply.error_code) == (
        "interrupted",
        "Partial",
        "interrupted",
    )
    assert "stopped reading this reply before its end" in reply.error
    assert producers.running_replies() == set()
    # Not left generating: the conversation takes the next message.
    assert conversation.post_user_message("Next", default_model(), None, PRODUCER_ID)[2]


def test_a_producer_cancelled_as_the_server_shuts_down_leaves_its_reply_to_recovery(alice, stub):
    conversation, reply, gate = held_reply(alice, stub)

    async def shut_down() -> None:
        producer = await started_with_text(reply, stub)
        (task,) = producers._tasks  # as cancel_producers() does at exit
        task.cancel()
        async with asyncio.timeout(30):  # a hang guard, not a timing check
            await producer.finished.wait()
        await http.client().aclose()

    asyncio.run(shut_down())
    gate.open()
    assert producers.running_replies() == set()
    reply.refresh_from_db()
    assert reply.is_active  # left for the next process's recovery, which gives the reason
    with pytest.raises(ReplyInProgress):  # and holding its conversation until then
        conversation.post_user_message("Next", default_model(), None, PRODUCER_ID)


def test_a_reply_stopped_twice_keeps_the_first_stops_reason(alice, stub):
    _, reply, gate = held_reply(alice, stub)

    async def stop_twice() -> None:
        producer = await started_with_text(reply, stub)
        producers.stop_for_client_gone(reply.pk)  # its /v1 client left
        producers.stop_for_credential_ended(reply.pk, "key_revoked")  # then its key went
        async with asyncio.timeout(30):  # a hang guard, not a timing check
            await producer.finished.wait()
        await http.client().aclose()

    asyncio.run(stop_twice())
    gate.open()
    reply.refresh_from_db()
    assert (reply.status, reply.content) == ("stopped", "Partial")
    assert reply.error_code == "client_disconnected"
    assert reply.error == producers.CLIENT_GONE
