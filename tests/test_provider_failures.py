"""Every provider failure ends the reply as `failed`, stored and streamed, and never leaks the key.

The stub writes each failure as real bytes: JSON error bodies, an error inside the stream,
broken JSON, a cut connection, a stream that just ends, and silence past the read timeout.
"""

import asyncio
import json

import pytest

from conversations.eventlog import event_log
from conversations.models import Conversation, Message
from conversations.producers import PRODUCER_ID
from conversations.providers.registry import default_model
from conversations.relay import start_reply
from conversations.reply_job import prepared_job
from tests.client import read_events, text_of
from tests.replies import RETRY_ATTEMPTS, assert_failed, failed_reply, send_in_new_conversation
from tests.servers import SECRET_PROVIDER_KEY
from tests.stub import (
    Gate,
    Script,
    json_error,
    openai_chunk,
    openai_stream,
    sse,
)


def test_rejected_key_fails_with_the_key_redacted_everywhere(server, stub, alice_client):
    stub.queue(
        json_error(401, f"Incorrect API key provided: {SECRET_PROVIDER_KEY}. Check your key.")
    )
    reply, events, _, exposure = failed_reply(alice_client)
    assert_failed(reply, events, "auth_error")
    assert "Incorrect API key provided" in reply["error"]  # the provider's own words are kept
    assert "[redacted]" in reply["error"]
    # The key was really sent, so its absence below is redaction, not luck.
    assert stub.requests[0].headers["authorization"] == f"Bearer {SECRET_PROVIDER_KEY}"
    assert SECRET_PROVIDER_KEY not in exposure
    assert SECRET_PROVIDER_KEY not in json.dumps(reply)
    stored = Message.objects.get(pk=reply["id"])
    assert SECRET_PROVIDER_KEY not in stored.error
    assert SECRET_PROVIDER_KEY not in json.dumps(stored.metadata)
    assert SECRET_PROVIDER_KEY not in server.log()
    assert len(stub.requests) == 1, "a rejected key is not retried"


def test_a_key_the_providers_long_message_shows_near_its_cut_is_redacted_too(
    server, stub, alice_client
):
    # Where a long message is cut for the reply's error, the key would be cut in two.
    stub.queue(json_error(400, "x" * 285 + f" Bearer {SECRET_PROVIDER_KEY} and more"))
    reply, events, _, exposure = failed_reply(alice_client)
    assert_failed(reply, events, "bad_request")
    assert "[redacted]" in reply["error"]
    assert SECRET_PROVIDER_KEY[:8] not in exposure


def test_bad_request_fails_with_the_providers_message(server, stub, alice_client):
    stub.queue(json_error(400, "This model's maximum context length is 8192 tokens."))
    reply, events, _, exposure = failed_reply(alice_client)
    assert_failed(reply, events, "bad_request")
    assert "maximum context length is 8192 tokens" in reply["error"]
    assert "HTTP 400" in reply["error"]
    assert SECRET_PROVIDER_KEY not in exposure
    assert len(stub.requests) == 1, "a refused request is not retried"
    # Refused, it was not billed: nothing counts against the owner's budget.
    assert (reply["total_tokens"], reply["usage_source"]) == (0, "estimated")


@pytest.mark.parametrize(
    ("status", "code"),
    [(500, "provider_unavailable"), (503, "provider_unavailable"), (429, "rate_limited")],
)
def test_retryable_error_is_retried_then_fails(server, stub, alice_client, status, code):
    message = f"Overloaded; your key {SECRET_PROVIDER_KEY} is fine."
    stub.queue(*(json_error(status, message, {"Retry-After": "0"}) for _ in range(RETRY_ATTEMPTS)))
    stub.queue(openai_stream(["never", " sent"]))  # would turn the failure into a reply
    reply, events, _, exposure = failed_reply(alice_client)
    assert_failed(reply, events, code)
    assert f"HTTP {status}" in reply["error"]
    assert SECRET_PROVIDER_KEY not in exposure
    assert len(stub.requests) == RETRY_ATTEMPTS
    attempts = reply["metadata"]["attempts"]
    assert [(a["attempt"], a["outcome"], a["status"]) for a in attempts] == [
        (n, code, status) for n in range(1, RETRY_ATTEMPTS + 1)
    ]
    assert all("retry_in_seconds" in a for a in attempts[:-1])


def test_server_error_then_success_is_retried_into_a_complete_reply(server, stub, alice_client):
    stub.queue(json_error(502, "Bad gateway"), openai_stream(["Second", " try"], usage=(5, 2)))
    conversation, body = send_in_new_conversation(alice_client)
    events = alice_client.events(body["stream_url"])
    reply = alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])
    assert text_of(events) == reply["content"] == "Second try"
    assert reply["status"] == "complete"
    assert [(a["outcome"], a.get("status")) for a in reply["metadata"]["attempts"]] == [
        ("provider_unavailable", 502),
        ("ok", None),
    ]
    assert len(stub.requests) == 2
    assert stub.requests[0].json == stub.requests[1].json


def test_error_object_inside_the_stream_fails_and_keeps_the_text(server, stub, alice_client):
    error = {"error": {"message": f"Upstream overloaded ({SECRET_PROVIDER_KEY})", "code": 500}}
    stub.queue(Script(steps=[openai_chunk(""), openai_chunk("Partial"), sse(error)]))
    reply, events, _, exposure = failed_reply(alice_client)
    assert_failed(reply, events, "provider_error")
    assert "Upstream overloaded" in reply["error"]
    assert reply["content"] == text_of(events) == "Partial"
    assert SECRET_PROVIDER_KEY not in exposure


def test_malformed_json_in_a_data_line_fails(server, stub, alice_client):
    stub.queue(Script(steps=[openai_chunk("Fine"), b'data: {"choices": [{"delta": \n\n']))
    reply, events, _, _ = failed_reply(alice_client)
    assert_failed(reply, events, "malformed")
    assert "malformed" in reply["error"]
    assert reply["content"] == "Fine"


def test_dropped_connection_fails_and_keeps_the_text_so_far(server, stub, alice_client):
    gate = Gate()
    stub.queue(Script(steps=[openai_chunk("Hello"), openai_chunk(" wor"), gate, "drop"]))
    conversation, body = send_in_new_conversation(alice_client)
    events = []
    with alice_client.http.stream("GET", body["stream_url"]) as response:
        for event in read_events(response.iter_bytes()):
            events.append(event)
            if text_of(events) == "Hello wor":
                gate.open()  # the text has reached the browser: now cut the connection
    reply = alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])
    assert_failed(reply, events, "connection_dropped")
    assert reply["content"] == "Hello wor"
    assert "cut off" in reply["error"]
    assert len(stub.requests) == 1, "nothing is retried once text was streamed"


def test_stream_ending_without_done_or_finish_reason_fails(server, stub, alice_client):
    stub.queue(Script(steps=[openai_chunk(""), openai_chunk("Hel"), openai_chunk("lo")]))
    reply, events, _, _ = failed_reply(alice_client)
    assert_failed(reply, events, "connection_dropped")
    assert reply["content"] == "Hello"
    assert "before the reply was complete" in reply["error"]


def test_read_timeout_fails_and_closes_the_upstream_request(start_server, stub, client_for, alice):
    process = start_server(PROVIDER_READ_TIMEOUT="0.5")
    client = client_for(alice, process.url)
    gate = Gate()
    stub.queue(Script(steps=[openai_chunk(""), openai_chunk("Thinking"), gate, openai_chunk("!")]))
    try:
        # Waits at most WAIT_SECONDS: the 0.5 s timeout must end it, not the 300 s default.
        reply, events, _, exposure = failed_reply(client, wait_first=True)
        assert_failed(reply, events, "timeout")
        assert "did not answer in time" in reply["error"]
        assert reply["content"] == "Thinking"
        assert SECRET_PROVIDER_KEY not in exposure
        assert stub.requests[0].wait_disconnected(), "chatsite hung up on the silent provider"
        assert len(stub.requests) == 1
    finally:
        gate.open()


def test_user_message_is_stored_even_when_the_provider_fails(server, stub, alice_client):
    stub.queue(json_error(400, "Invalid request"))
    conversation, body = send_in_new_conversation(alice_client, "Please keep this question")
    reply = alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])
    assert reply["status"] == "failed"
    messages = alice_client.conversation(conversation["id"])["messages"]
    assert [(m["role"], m["status"]) for m in messages] == [
        ("user", "complete"),
        ("assistant", "failed"),
    ]
    assert messages[0]["content"] == "Please keep this question"
    assert messages[1]["parent"] == messages[0]["id"] == body["user_message"]["id"]
    stored = Message.objects.get(pk=body["user_message"]["id"])
    assert (stored.role, stored.content) == ("user", "Please keep this question")
    assert stub.requests[0].json["messages"][-1] == {
        "role": "user",
        "content": "Please keep this question",
    }


def test_a_reply_whose_model_is_no_longer_configured_is_stored_as_failed(alice):
    # The message POST prepares the provider request itself; a model that vanished from the
    # configuration in between must not fail the POST but the reply, stored with its reason.
    conversation = Conversation.objects.create(owner=alice, model=default_model().id)
    _, reply, _ = conversation.post_user_message("Hi", default_model(), None, PRODUCER_ID)
    Message.objects.filter(pk=reply.pk).update(model="openai:retired")
    reply.model = "openai:retired"
    assert prepared_job(reply) is None

    async def produce() -> bytes:
        await start_reply(reply, None)
        frames = await event_log().follow(reply.pk, 0, 60)
        return b"".join([frame async for _, frame in frames])

    streamed = asyncio.run(produce())
    assert b"event: error" in streamed and b"bad_model" in streamed
    reply.refresh_from_db()
    assert reply.status == Message.Status.FAILED
    assert reply.error_code == "bad_model"
    assert "openai:retired" in reply.error


def test_a_json_error_answered_with_200_instead_of_a_stream_fails_with_its_reason(
    server, stub, alice_client
):
    # Some gateways answer a streaming request so when a balance has run out.
    stub.queue(json_error(200, "Insufficient balance"))
    reply, events, _, _ = failed_reply(alice_client)
    assert_failed(reply, events, "provider_error")
    assert "answered with an error instead of a stream: Insufficient balance" in reply["error"]
    assert len(stub.requests) == 1
