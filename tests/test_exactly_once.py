"""Exactly once: a repeated client_id starts nothing, a second POST while generating is a 409."""

import sqlite3
import threading
import uuid

import httpx
import pytest
from django.conf import settings

from conversations.completion import ReplyOutcome, finish_reply
from conversations.models import Message
from conversations.providers.base import Usage
from tests.chats import add_chat
from tests.client import wait_for
from tests.stub import Gate, gated_stream


def test_repeated_client_id_returns_the_first_result_and_starts_nothing(server, stub, alice_client):
    conversation = alice_client.new_conversation()
    client_id = str(uuid.uuid4())
    first = alice_client.send(conversation["id"], "Hello", client_id=client_id)
    assert first.status_code == 201
    alice_client.wait_final(conversation["id"], first.json()["assistant_message"]["id"])

    again = alice_client.send(conversation["id"], "Hello", client_id=client_id)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["user_message"]["id"] == first.json()["user_message"]["id"]
    assert again.json()["assistant_message"]["id"] == first.json()["assistant_message"]["id"]
    assert Message.objects.filter(conversation_id=conversation["id"]).count() == 2
    # A reply started by the replay would have reached the provider before the next one.
    following = alice_client.send(conversation["id"], "Next")
    alice_client.wait_final(conversation["id"], following.json()["assistant_message"]["id"])
    assert len(stub.requests) == 2


def test_idempotency_key_header_works_like_client_id(server, stub, alice_client):
    conversation = alice_client.new_conversation()
    key = {"Idempotency-Key": str(uuid.uuid4())}
    url = f"/api/conversations/{conversation['id']}/messages/"
    first = alice_client.http.post(url, json={"content": "Hi"}, headers=key)
    alice_client.wait_final(conversation["id"], first.json()["assistant_message"]["id"])
    again = alice_client.http.post(url, json={"content": "Hi"}, headers=key)
    assert again.json()["assistant_message"]["id"] == first.json()["assistant_message"]["id"]
    assert Message.objects.filter(conversation_id=conversation["id"]).count() == 2


def test_an_idempotency_key_written_as_a_structured_field_string_works(server, stub, alice_client):
    conversation = alice_client.new_conversation()
    key = str(uuid.uuid4())
    url = f"/api/conversations/{conversation['id']}/messages/"
    first = alice_client.http.post(url, json={"content": "Hi"}, headers={"Idempotency-Key": key})
    alice_client.wait_final(conversation["id"], first.json()["assistant_message"]["id"])
    quoted = {"Idempotency-Key": f'"{key}"'}  # as the IETF draft's examples write it
    again = alice_client.http.post(url, json={"content": "Hi"}, headers=quoted)
    assert again.status_code == 201, again.text
    assert again.json()["user_message"]["id"] == first.json()["user_message"]["id"]
    half = alice_client.http.post(
        url, json={"content": "Hi"}, headers={"Idempotency-Key": f'"{key}'}
    )
    assert half.status_code == 400 and "Must be a UUID" in half.text
    assert len(stub.requests) == 1


@pytest.mark.parametrize("as_header", [False, True], ids=["client_id", "Idempotency-Key"])
def test_a_key_sent_again_with_another_message_is_a_422_and_stores_nothing(
    server, stub, alice_client, as_header
):
    conversation = alice_client.new_conversation()
    key = str(uuid.uuid4())
    url = f"/api/conversations/{conversation['id']}/messages/"

    def post(content: str) -> httpx.Response:
        if as_header:
            return alice_client.http.post(
                url, json={"content": content}, headers={"Idempotency-Key": key}
            )
        return alice_client.send(conversation["id"], content, client_id=key)

    first = post("Hello")
    alice_client.wait_final(conversation["id"], first.json()["assistant_message"]["id"])
    other = post("Goodbye")  # the first would be given back, and this one lost
    assert other.status_code == 422, other.text
    error = other.json()["error"]
    assert error["code"] == "client_id_reused"
    assert "sent before with a different message" in error["message"]
    stored = Message.objects.filter(conversation_id=conversation["id"])
    assert [m.content for m in stored.filter(role="user")] == ["Hello"]
    assert stored.count() == 2 and len(stub.requests) == 1
    # The same key with the same message is still the first pair.
    assert post("Hello").json()["user_message"]["id"] == first.json()["user_message"]["id"]


def test_second_message_while_reply_generates_is_a_409(server, stub, alice_client):
    gate = Gate()
    stub.queue(gated_stream(["Thinking"], gate))
    conversation = alice_client.new_conversation()
    first = alice_client.send(conversation["id"], "First")
    gate.wait_reached()

    second = alice_client.send(conversation["id"], "Second")
    assert second.status_code == 409
    assert "still being generated" in second.json()["error"]["message"]
    assert Message.objects.filter(conversation_id=conversation["id"]).count() == 2
    gate.open()
    alice_client.wait_final(conversation["id"], first.json()["assistant_message"]["id"])


def test_concurrent_posts_start_exactly_one_reply(server, stub, alice_client):
    gate = Gate()
    stub.queue(gated_stream(["Thinking"], gate))
    conversation = alice_client.new_conversation()
    statuses: list[int] = []
    barrier = threading.Barrier(5)

    def post(n):
        barrier.wait()
        statuses.append(alice_client.send(conversation["id"], f"Message {n}").status_code)

    threads = [threading.Thread(target=post, args=(n,)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(statuses) == [201, 409, 409, 409, 409]
    gate.wait_reached()
    gate.open()
    assert Message.objects.filter(conversation_id=conversation["id"]).count() == 2
    assert len(stub.requests) == 1


def test_opening_many_streams_never_starts_another_generation(server, stub, alice_client):
    conversation = alice_client.new_conversation()
    body = alice_client.send(conversation["id"], "Hi").json()
    for _ in range(3):
        alice_client.events(body["stream_url"])
    alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])
    assert len(stub.requests) == 1


def test_a_reply_finished_twice_keeps_its_first_final_state(alice):
    conversation = add_chat(alice, "Twice")
    asked = conversation.messages.get(role="user")
    reply = conversation.messages.create(
        role="assistant", parent=asked, status=Message.Status.STREAMING, content="Hal"
    )
    first = ReplyOutcome(
        status=Message.Status.COMPLETE,
        content="Hello",
        finish_reason="stop",
        usage=Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5),
        usage_source=Message.UsageSource.PROVIDER,
        time_to_first_token_ms=12,
        duration_ms=40,
        metadata={"attempts": [{"attempt": 1, "outcome": "ok"}], "note": "ünïcode"},
    )
    stored = finish_reply(reply, first)
    assert stored is not None and stored.content == "Hello"
    # Crash recovery, or a stop passed on late: a second outcome for the same reply.
    late = ReplyOutcome(status=Message.Status.INTERRUPTED, content="Hel", error="gone")
    assert finish_reply(reply, late) is None
    reply.refresh_from_db()
    assert (reply.status, reply.content, reply.finish_reason, reply.error) == (
        "complete", "Hello", "stop", ""
    )  # fmt: skip
    assert (reply.prompt_tokens, reply.completion_tokens, reply.total_tokens) == (3, 2, 5)
    assert (reply.time_to_first_token_ms, reply.duration_ms) == (12, 40)
    assert reply.metadata == first.metadata  # stored as JSON, read back whole
    assert reply.completed_at == stored.completed_at and reply.completed_at.tzinfo is not None
    conversation.refresh_from_db()
    assert conversation.updated_at == reply.completed_at  # first in the lists, once


@pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
    reason="holds SQLite's write lock; PostgreSQL locks rows, not the database",
)
def test_a_reply_that_ends_while_the_database_is_locked_is_stored_once_it_is_free(
    start_server, stub, client_for, alice
):
    server = start_server(SQLITE_BUSY_TIMEOUT="0")  # a locked database fails each write at once
    client = client_for(alice, base_url=server.url)
    gate = Gate()
    stub.queue(gated_stream(["Hello"], gate, [" world"]))
    conversation = client.new_conversation()
    body = client.send(conversation["id"]).json()
    gate.wait_reached()
    locker = sqlite3.connect(settings.DATABASES["default"]["NAME"], isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        gate.open()  # the reply ends; storing it fails while the lock is held
        wait_for(lambda: "trying again" in server.log(), "a failed final write")
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    reply = client.wait_final(conversation["id"], body["assistant_message"]["id"])
    assert (reply["status"], reply["content"]) == ("complete", "Hello world")
    assert reply["total_tokens"] == 18  # the provider's usage, stored with it
    events = client.events(body["stream_url"])
    assert [e.name for e in events] == ["delta", "delta", "done"]
