"""A browser that leaves mid-reply changes nothing: the reply is read to its end and stored once."""

import socket
import time
from urllib.parse import urlsplit

import psutil
from django.db import transaction

from conversations.models import Conversation, Message
from tests.client import WAIT_SECONDS, form_login, read_events, text_of
from tests.stub import Gate, Script, gated_stream, openai_stream

BEFORE_GATE = ["The", " quick", " brown"]
AFTER_GATE = [" fox", " jumps", " over", " the", " lazy", " dog."]
WHOLE_TEXT = "".join(BEFORE_GATE + AFTER_GATE)
ACTIVE = ("pending", "streaming")


def gated_reply(gate: Gate) -> Script:
    """A reply that pauses at `gate` after a few tokens, then finishes with provider usage."""
    return gated_stream(BEFORE_GATE, gate, after=AFTER_GATE, usage=(21, 9))


def wait_until_server_drops(server_pid: int, client_port: int) -> None:
    """Wait until the server process has closed the browser's connection (it noticed)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        held = [
            c
            for c in psutil.Process(server_pid).net_connections(kind="tcp")
            if c.raddr and c.raddr.port == client_port
        ]
        if not held:
            return
        time.sleep(0.02)
    raise AssertionError("the server never noticed the browser leaving")


def test_reply_is_saved_when_browser_disconnects(server, stub, alice_client):
    gate = Gate()
    stub.queue(gated_reply(gate))
    conversation = alice_client.new_conversation()
    body = alice_client.send(conversation["id"], "Say the pangram").json()
    reply_id = body["assistant_message"]["id"]

    seen = []
    with alice_client.http.stream("GET", body["stream_url"]) as response:
        client_port = response.extensions["network_stream"].get_extra_info("client_addr")[1]
        for event in read_events(response.iter_bytes()):
            seen.append(event)
            if text_of(seen) == "".join(BEFORE_GATE):
                break  # the browser goes away mid-reply
    assert response.is_closed
    wait_until_server_drops(server.process.pid, client_port)
    # Not finished yet: the rest of the reply is still held back at the gate.
    assert alice_client.message(conversation["id"], reply_id)["status"] in ACTIVE

    gate.open()
    reply = alice_client.wait_final(conversation["id"], reply_id)
    assert reply["status"] == "complete"
    assert reply["content"] == WHOLE_TEXT
    assert reply["finish_reason"] == "stop"
    assert (reply["prompt_tokens"], reply["completion_tokens"], reply["total_tokens"]) == (
        21,
        9,
        30,
    )
    assert reply["usage_source"] == "provider"
    # Stored exactly once: one reply row, one provider request, the whole upstream read.
    assert Message.objects.filter(conversation_id=conversation["id"]).count() == 2
    assert Message.objects.filter(pk=reply_id, status="complete").count() == 1
    assert len(stub.requests) == 1
    assert stub.requests[0].finished.is_set()
    assert not stub.requests[0].disconnected.is_set(), "the upstream request was not cut"


def test_returning_browser_gets_the_whole_reply_and_can_resume(server, stub, alice_client):
    gate = Gate()
    stub.queue(gated_reply(gate))
    conversation = alice_client.new_conversation()
    body = alice_client.send(conversation["id"], "Say the pangram").json()
    seen = []
    with alice_client.http.stream("GET", body["stream_url"]) as response:
        for event in read_events(response.iter_bytes()):
            seen.append(event)
            if text_of(seen) == "".join(BEFORE_GATE):
                break
    gate.open()
    alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])

    again = alice_client.events(body["stream_url"])
    assert text_of(again) == WHOLE_TEXT
    assert again[-1].name == "done"
    assert again[-1].data["message"]["content"] == WHOLE_TEXT
    # EventSource reconnects with the last id it saw and gets exactly the rest.
    resumed = alice_client.events(body["stream_url"], headers={"Last-Event-ID": str(seen[-1].id)})
    assert text_of(resumed) == "".join(AFTER_GATE)
    assert resumed[-1].name == "done"
    assert len(stub.requests) == 1, "reconnecting never repeats a generation"


def post_then_leave(base_url: str, cookies: dict[str, str], path: str, body: bytes) -> int:
    """Send a POST and close the connection without reading the answer; the local port."""
    address = urlsplit(base_url)
    with socket.create_connection((address.hostname, address.port)) as connection:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {address.netloc}\r\n"
            f"Cookie: sessionid={cookies['sessionid']}; csrftoken={cookies['csrftoken']}\r\n"
            f"X-CSRFToken: {cookies['csrftoken']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        connection.sendall(head.encode() + body)
        return connection.getsockname()[1]


def test_a_message_whose_sender_leaves_before_the_answer_still_gets_its_reply(
    server, stub, alice_client
):
    stub.queue(openai_stream(["Answered", " anyway"]))
    conversation_id = alice_client.new_conversation()["id"]
    cookies = form_login(server.url, "alice")
    path = f"/api/conversations/{conversation_id}/messages/"
    # The conversation's row is locked meanwhile, so the view is still storing the message
    # when the server sees the client go.
    with transaction.atomic():
        Conversation.objects.filter(pk=conversation_id).update(title="Held")
        client_port = post_then_leave(server.url, cookies, path, b'{"content": "Hello?"}')
        wait_until_server_drops(server.process.pid, client_port)

    reply = alice_client.wait_final(conversation_id, reply_of(conversation_id))
    assert (reply["status"], reply["content"]) == ("complete", "Answered anyway")


def reply_of(conversation_id: str) -> str:
    """The id of the conversation's reply, once the message POST has stored it."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        reply = Message.objects.filter(conversation_id=conversation_id, role="assistant").first()
        if reply is not None:
            return str(reply.pk)
        time.sleep(0.02)
    raise AssertionError("the message and its reply were never stored")
