"""chatsite on several processes with Redis unreachable: pages still work, a new reply fails at
once with its reason, and a reply can still be stopped, instead of answers of 500."""

import pytest
from django.utils import timezone

from conversations.models import Message
from tests.chats import add_chat
from tests.stub import Gate, Script, openai_chunk

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # nothing listens there: refused at once


@pytest.fixture
def client_without_redis(start_server, client_for, alice):
    server = start_server(REDIS_URL=UNREACHABLE_REDIS, CHATSITE_REDIS_PREFIX="outage")
    return client_for(alice, base_url=server.url)


def test_a_reply_that_cannot_reach_redis_is_stored_as_failed_with_the_reason(
    client_without_redis, stub
):
    client = client_without_redis
    conversation = client.new_conversation()  # sessions are read from the database meanwhile
    posted = client.send(conversation["id"], "Hello")
    assert posted.status_code == 201, posted.text  # the message is stored
    body = posted.json()

    events = client.events(body["stream_url"])  # read from the database
    assert [event.name for event in events] == ["error"]
    error = events[0].data["error"]
    assert error["code"] == "event_log_unavailable"
    assert "Redis" in error["message"] and "127.0.0.1" not in error["message"]
    reply = Message.objects.get(pk=body["assistant_message"]["id"])
    assert reply.status == Message.Status.FAILED
    assert reply.error_code == "event_log_unavailable"
    assert stub.requests == []  # the provider was never called
    assert client.http.get(f"/api/conversations/{conversation['id']}/").status_code == 200


def test_a_reply_produced_elsewhere_can_be_stopped_while_redis_is_down(client_without_redis, alice):
    conversation = add_chat(
        alice,
        "Elsewhere",
        status=Message.Status.STREAMING,
        content="Half a",
        producer="another-host:4242:cafe0000",  # a live process elsewhere, beating
        heartbeat_at=timezone.now(),
    )
    reply = conversation.messages.get(role="assistant")
    stopped = client_without_redis.http.post(f"/api/messages/{reply.pk}/stop/")
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] == "stopped"
    reply.refresh_from_db()
    assert (reply.status, reply.content) == (Message.Status.STOPPED, "Half a")


def test_a_reply_stopped_while_redis_is_down_stops_reading_its_provider(
    start_server, client_for, client_without_redis, stub, alice
):
    # The producing process is not told (the stop cannot pass through Redis), so it finds
    # the reply stored as stopped at its next checkpoint and closes the provider's stream.
    producing = client_for(alice, base_url=start_server(CHATSITE_CHECKPOINT_SECONDS="0.1").url)
    gate = Gate()
    stub.queue(Script(steps=[openai_chunk(""), openai_chunk("Half a"), gate]))
    conversation = producing.new_conversation()
    body = producing.send(conversation["id"], "Go").json()
    reply_id = body["assistant_message"]["id"]
    gate.wait_reached()

    stopped = client_without_redis.http.post(f"/api/messages/{reply_id}/stop/")
    assert stopped.status_code == 200, stopped.text
    assert stub.requests[0].wait_disconnected()  # no more generation, no more billing

    events = producing.events(body["stream_url"])
    assert events[-1].name == "done"
    assert events[-1].data["message"]["status"] == "stopped"
    stored = Message.objects.get(pk=reply_id)
    assert stored.status == Message.Status.STOPPED  # the producer's own write was refused
    assert stored.content == stopped.json()["content"]
