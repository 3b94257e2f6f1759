"""A /v1 reply that another process stored first as interrupted (crash recovery gave up on its
producer) is an error for the client, streamed or whole, unless its producer, alive after all,
has the whole reply and stores it over that: never a whole completion with the finish reason
"stop" over text cut short. A reply its owner stops in chatsite is an error too."""

import concurrent.futures
import json

import httpx

from conversations.models import Message
from conversations.recovery import end_without_producer
from tests.replies import HISTORY, MODEL, stored_reply
from tests.stub import Gate, Script, gated_stream, openai_chunk

# No checkpoint in between tells the producer its reply has ended: it gets to its own end.
NO_TICK = {"CHATSITE_CHECKPOINT_SECONDS": "60", "CHATSITE_FIRST_TOKEN_SAVE_SECONDS": "60"}


def interrupt_elsewhere(gate: Gate) -> Message:
    """What recovery in another process does to the held reply; then the provider goes on."""
    gate.wait_reached()
    running = Message.objects.active_replies().select_related("parent")
    reply = running.get()  # the one the client is waiting for
    assert end_without_producer(reply, Message.Status.INTERRUPTED)
    gate.open()
    return reply


def completions(server, alice_key: str, stream: bool) -> tuple[str, dict, dict]:
    url = f"{server.url}/v1/chat/completions"
    body = {"model": MODEL, "messages": HISTORY[1:2], "stream": stream}
    return url, body, {"Authorization": f"Bearer {alice_key}"}


def cut_after_before(gate: Gate) -> Script:
    """ "Before", then, once the gate opens, the provider drops the connection."""
    return Script(steps=[openai_chunk(""), openai_chunk("Before"), gate, "drop"])


def stream_interrupted_elsewhere(server, stub, alice_key: str, script: Script, gate: Gate) -> bytes:
    stub.queue(script)
    url, body, headers = completions(server, alice_key, stream=True)
    with httpx.stream("POST", url, json=body, headers=headers, timeout=30) as response:
        assert response.status_code == 200
        reads = response.iter_bytes()
        received = b""
        while b"Before" not in received:
            received += next(reads)
        interrupt_elsewhere(gate)
        return received + b"".join(reads)


def await_interrupted_elsewhere(server, stub, alice_key: str, script: Script, gate: Gate):
    stub.queue(script)
    url, body, headers = completions(server, alice_key, stream=False)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(httpx.post, url, json=body, headers=headers, timeout=30)
        interrupt_elsewhere(gate)
        return answer.result()


def test_a_streamed_reply_interrupted_elsewhere_ends_with_an_error(start_server, stub, alice_key):
    gate = Gate()
    server = start_server(**NO_TICK)
    received = stream_interrupted_elsewhere(server, stub, alice_key, cut_after_before(gate), gate)
    last = received.strip().split(b"\n\n")[-1]
    assert last.startswith(b"data: {")  # OpenAI's error in a stream: its SDKs raise it
    error = json.loads(last.removeprefix(b"data: "))["error"]
    assert (error["code"], error["type"]) == ("interrupted", "server_error")
    assert "stopped" in error["message"]
    assert b"[DONE]" not in received and b'"finish_reason":"stop"' not in received


def test_a_whole_completion_interrupted_elsewhere_is_a_503(start_server, stub, alice_key):
    gate = Gate()
    server = start_server(**NO_TICK)
    response = await_interrupted_elsewhere(server, stub, alice_key, cut_after_before(gate), gate)
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert (error["code"], error["type"]) == ("interrupted", "server_error")
    stored = stored_reply()
    assert (stored.status, stored.finish_reason) == ("interrupted", "interrupted")


def test_a_reply_interrupted_elsewhere_whose_producer_has_it_whole_is_whole(
    start_server, stub, alice_key
):
    # Recovery on another host took the producer for gone; alive after all, it stores the
    # whole reply over that, and its client gets it, streamed or whole.
    server = start_server(**NO_TICK)
    gate = Gate()
    whole = gated_stream(["Before"], gate, after=[" after"])
    received = stream_interrupted_elsewhere(server, stub, alice_key, whole, gate)
    assert b'"finish_reason":"stop"' in received and received.strip().endswith(b"data: [DONE]")
    assert (stored_reply().status, stored_reply().content) == ("complete", "Before after")

    Message.objects.all().delete()
    gate = Gate()
    whole = gated_stream(["Before"], gate, after=[" after"])
    response = await_interrupted_elsewhere(server, stub, alice_key, whole, gate)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Before after"
    assert stored_reply().status == "complete"


def stop_in_chatsite(gate: Gate, owner_client) -> None:
    """The owner's Stop on the chat page (the conversation is listed under ?source=api)."""
    gate.wait_reached()
    reply = Message.objects.active_replies().get()
    assert owner_client.http.post(f"/api/messages/{reply.pk}/stop/").status_code == 200
    gate.open()


def test_a_streamed_reply_its_owner_stops_ends_with_an_error(
    server, stub, alice, alice_key, client_for
):
    gate = Gate()
    stub.queue(gated_stream(["Before"], gate, after=[" after"]))
    url, body, headers = completions(server, alice_key, stream=True)
    with httpx.stream("POST", url, json=body, headers=headers, timeout=30) as response:
        reads = response.iter_bytes()
        received = b""
        while b"Before" not in received:
            received += next(reads)
        stop_in_chatsite(gate, client_for(alice))
        received += b"".join(reads)
    error = json.loads(received.strip().split(b"\n\n")[-1].removeprefix(b"data: "))["error"]
    assert (error["code"], error["type"]) == ("stopped", "invalid_request_error")
    assert "owner's Stop" in error["message"]
    # Not a whole completion: no finish reason OpenAI's clients do not know, no [DONE].
    assert b"[DONE]" not in received and b'"finish_reason"' not in received.replace(
        b'"finish_reason":null', b""
    )
    assert stored_reply().status == "stopped"


def test_a_whole_completion_its_owner_stops_is_a_409(server, stub, alice, alice_key, client_for):
    gate = Gate()
    stub.queue(gated_stream(["Before"], gate, after=[" after"]))
    url, body, headers = completions(server, alice_key, stream=False)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(httpx.post, url, json=body, headers=headers, timeout=30)
        stop_in_chatsite(gate, client_for(alice))
        response = answer.result()
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "stopped"
    # OpenAI's SDKs send a 409 again by default: that would undo the Stop with a new reply.
    assert response.headers["x-should-retry"] == "false"
