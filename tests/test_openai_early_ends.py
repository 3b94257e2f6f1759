"""A /v1 completion that ends early: its client leaves, its key is revoked, or its reply is
deleted before it is stored. Generation stops, and what was written is kept (or said gone)."""

import concurrent.futures
import contextlib
import json
import socket
import urllib.parse
from collections.abc import Callable, Iterator

import httpx
import pytest
from django.db import connection

from conversations.apikeys import revoke_key
from conversations.budgets import rate_held
from conversations.models import Conversation, Message, UserBudget
from tests.client import first_text, wait_for
from tests.replies import HISTORY, MODEL, stored_reply
from tests.stub import Gate, gated_stream
from tests.test_budgets import lock_waiters


@contextlib.contextmanager
def stream_held_after_before(server: object, stub: object, key: str) -> Iterator[tuple]:
    """A streamed /v1 completion whose reply is held after "Before" until the gate opens:
    (the gate, the rest of its lines)."""
    gate = Gate()
    stub.queue(gated_stream(["Before"], gate, after=[" and after"]))
    body = {"model": MODEL, "messages": HISTORY[1:2], "stream": True}
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body, headers=headers) as r:
        lines = r.iter_lines()
        assert first_text(lines) == "Before"
        yield gate, lines


def test_a_client_that_leaves_mid_stream_stops_its_reply_keeping_the_text(server, stub, alice_key):
    gate = Gate()
    stub.queue(gated_stream(["Before"], gate, after=[" and after"]))
    body = {"model": MODEL, "messages": HISTORY[1:2], "stream": True}
    headers = {"Authorization": f"Bearer {alice_key}"}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body, headers=headers) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
        received = b""
        for data in r.iter_bytes():
            received += data
            if b"Before" in received:
                break  # hang up with the reply half done
    # As OpenAI's API: generation stops (the provider's connection closes), nothing is lost.
    assert stub.requests[-1].wait_disconnected(), "the provider was still generating"
    reply = stored_reply()
    assert (reply.status, reply.content, reply.error_code) == (
        "stopped", "Before", "client_disconnected"
    )  # fmt: skip
    assert "disconnected" in reply.error
    gate.open()


def test_a_stream_whose_reply_is_deleted_before_it_is_stored_ends_with_not_found(
    start_server, stub, alice, alice_key
):
    # Its key outlives the test: only the reply's row goes, as with a user deleted by staff.
    server = start_server(CHATSITE_API_KEY_RECHECK_SECONDS="3600")
    with stream_held_after_before(server, stub, alice_key) as (gate, lines):
        Conversation.objects.all().delete()  # the reply with it, still running
        gate.open()
        rest = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    *deltas, last = [json.loads(data) for data in rest]
    assert deltas[-1]["choices"][0]["delta"] == {"content": " and after"}
    assert last == {
        "error": {
            "code": "not_found",
            "message": "The conversation was deleted meanwhile.",
            "type": "invalid_request_error",  # OpenAI's shape, as its 404 would have had
            "param": None,
        }
    }
    assert not Message.objects.exists()


def test_revoking_the_key_mid_stream_stops_its_reply_keeping_the_text(
    start_server, stub, alice, alice_key
):
    server = start_server(CHATSITE_API_KEY_RECHECK_SECONDS="0.1")
    with stream_held_after_before(server, stub, alice_key) as (gate, lines):
        revoke_key(alice.api_keys.get())
        error = json.loads(next(line for line in lines if "error" in line).removeprefix("data: "))
        assert error["error"]["code"] == "key_revoked"
        assert error["error"]["type"] == "invalid_request_error"  # as its 401 would have had
    # The client cannot resume it: generation stops, as when the client leaves.
    assert stub.requests[-1].wait_disconnected(), "the provider was still generating"
    reply = stored_reply()
    assert (reply.status, reply.content, reply.error_code) == ("stopped", "Before", "key_revoked")
    gate.open()


def await_held_completion(
    server, stub, key: str, gate: Gate, meanwhile: Callable[[], None]
) -> httpx.Response:
    """A whole /v1 completion whose reply is held after "Half" at `gate`; `meanwhile` runs
    once it is held; the completion's answer."""
    stub.queue(gated_stream(["Half"], gate, after=[" of it"]))
    body = {"model": MODEL, "messages": HISTORY[1:2]}
    headers = {"Authorization": f"Bearer {key}"}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(
            httpx.post, f"{server.url}/v1/chat/completions", json=body, headers=headers, timeout=60
        )
        gate.wait_reached()
        meanwhile()
        return answer.result()


def test_revoking_the_key_while_a_whole_completion_is_awaited_stops_it_with_a_401(
    start_server, stub, alice, alice_key
):
    server = start_server(CHATSITE_API_KEY_RECHECK_SECONDS="0.1")
    gate = Gate()
    refused = await_held_completion(
        server, stub, alice_key, gate, lambda: revoke_key(alice.api_keys.get())
    )
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "key_revoked"
    assert stub.requests[-1].wait_disconnected(), "the provider was still generating"
    reply = stored_reply()
    assert (reply.status, reply.content, reply.error_code) == ("stopped", "Half", "key_revoked")
    gate.open()


def completion_sent_raw(server: object, key: str, stream: bool = False) -> socket.socket:
    """A connection that has sent a /v1 completion request and reads nothing (close it to
    leave)."""
    body = json.dumps({"model": MODEL, "messages": HISTORY[1:2], "stream": stream}).encode()
    url = urllib.parse.urlsplit(server.url)
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    client = socket.create_connection((url.hostname, url.port))
    client.sendall(request + body)
    return client


def test_a_client_that_leaves_before_a_whole_completion_stops_its_reply(server, stub, alice_key):
    gate = Gate()
    stub.queue(gated_stream(["Half"], gate, after=[" of it"]))
    with completion_sent_raw(server, alice_key):
        gate.wait_reached()
        # The reply has its first token (saved as streaming); the client gives up waiting.
        wait_for(Message.objects.filter(status="streaming").first, "the reply streaming")
    assert stub.requests[-1].wait_disconnected(), "the provider was still generating"
    reply = stored_reply()
    assert (reply.status, reply.content, reply.error_code) == (
        "stopped", "Half", "client_disconnected"
    )  # fmt: skip
    gate.open()


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="watches PostgreSQL's lock table (see test_budgets.py)",
)
@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_a_client_that_leaves_while_its_completion_starts_stops_its_reply(
    server, stub, alice, alice_key, stream
):
    gate = Gate()
    stub.queue(gated_stream(["Half"], gate, after=[" of it"]))
    UserBudget.objects.create(user=alice, requests_per_minute=10)  # starts take turns
    with rate_held(alice):  # another start of alice's holds the turn
        client = completion_sent_raw(server, alice_key, stream)
        wait_for(lock_waiters, "the completion to wait for its turn")
        client.close()  # gone; its start goes on (its message stored) once the turn is free
    reply = wait_for(
        Message.objects.filter(role="assistant", status="stopped").first, "the reply stopped"
    )
    assert reply.error_code == "client_disconnected"
    gate.open()


def test_a_whole_completion_whose_reply_is_deleted_before_it_is_stored_is_a_404(
    start_server, stub, alice, alice_key
):
    server = start_server(CHATSITE_API_KEY_RECHECK_SECONDS="3600")  # only the reply's row goes
    gate = Gate()

    def delete_then_go_on() -> None:
        Conversation.objects.all().delete()  # the reply with it, still running
        gate.open()

    gone = await_held_completion(server, stub, alice_key, gate, delete_then_go_on)
    assert gone.status_code == 404, gone.text
    assert gone.json()["error"]["code"] == "not_found"
    assert gone.json()["error"]["message"] == "The conversation was deleted meanwhile."
    assert not Message.objects.exists()
