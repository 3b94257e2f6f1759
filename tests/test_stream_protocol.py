"""The stream endpoint's wire format: headers, ids on every event, heartbeats, stored replies."""

import asyncio

import httpx
import pytest

from conversations import relay
from conversations.api.stream import PING, RETRY_HINT, reply_events, stored_reply_events
from conversations.apikeys import create_key
from conversations.eventlog import HEARTBEAT, event_log
from conversations.models import Conversation, Message
from conversations.producers import PRODUCER_ID
from conversations.providers import http
from conversations.providers.registry import default_model
from conversations.relay import start_reply
from tests.client import read_events, text_of
from tests.replies import ask, stub_job
from tests.stub import Gate, Script, json_error, openai_chunk, openai_stream


def test_stream_headers_and_every_event_has_an_id(server, stub, alice_client):
    stub.queue(openai_stream(["a", "b", "c"]))
    conversation = alice_client.new_conversation()
    body = alice_client.send(conversation["id"], "Hi").json()
    with alice_client.http.stream("GET", body["stream_url"]) as response:
        raw = response.read().decode()
        headers = response.headers
    assert headers["content-type"] == "text/event-stream"
    assert headers["cache-control"] == "no-cache"
    assert headers["x-accel-buffering"] == "no"
    assert "content-length" not in headers
    assert "content-encoding" not in headers
    events = [block for block in raw.split("\n\n") if "event:" in block and "ping" not in block]
    assert len(events) == 4
    assert all(block.startswith(f"id: {n}\n") for n, block in enumerate(events, start=1))


def read_until_twice(response: httpx.Response, heartbeat: bytes) -> bytes:
    """What a silent stream sent until `heartbeat` came twice."""
    received = b""
    for chunk in response.iter_bytes():
        received += chunk
        if received.count(heartbeat) >= 2:
            break
    return received


@pytest.mark.parametrize("caller", ["session", "api_key"])
def test_a_silent_stream_beats_with_pings_for_a_page_and_comments_for_a_key(
    start_server, stub, client_for, alice, caller
):
    # EventSource hands a page's script events, never comments: a ping tells a silent model
    # from a dead connection (static/chatsite/stream.js). An API client may expect an id on
    # every event: it keeps the comments it always had.
    server = start_server(CHATSITE_HEARTBEAT_SECONDS="0.05")
    client = client_for(alice, base_url=server.url)
    stub.queue(Script(steps=[gate := Gate(), openai_chunk("late")]))
    body = client.send(client.new_conversation()["id"], "Hi").json()
    gate.wait_reached()
    http, heartbeat = client.http, PING
    if caller == "api_key":
        _, secret = create_key(alice, "heartbeats")
        headers = {"Authorization": f"Bearer {secret}"}
        http, heartbeat = httpx.Client(base_url=server.url, headers=headers), HEARTBEAT
    with http.stream("GET", body["stream_url"]) as response:
        received = read_until_twice(response, heartbeat)
    # Nothing but heartbeats while the model is silent, without ids: a reconnect resumes
    # after the last real event. (The last frame may have been read in part.)
    whole_frames = [frame + b"\n\n" for frame in received.split(b"\n\n")[:-1]]
    assert whole_frames[0] == RETRY_HINT and set(whole_frames[1:]) == {heartbeat}
    gate.open()


def test_a_silent_v1_stream_gets_comment_heartbeats(start_server, stub, alice):
    # OpenAI's SDKs read every event's data as a chunk: /v1 keeps SSE comments.
    server = start_server(CHATSITE_HEARTBEAT_SECONDS="0.05")
    gate = Gate()
    stub.queue(Script(steps=[gate, openai_chunk("late")]))
    _, secret = create_key(alice, "heartbeats")
    request = {"model": default_model().id, "messages": [{"role": "user", "content": "Hi"}]}
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.stream(
        "POST", f"{server.url}/v1/chat/completions", json={**request, "stream": True},
        headers=headers, timeout=30,
    ) as response:  # fmt: skip
        received = read_until_twice(response, HEARTBEAT)
    assert b"event:" not in received and b"ping" not in received
    gate.open()


def test_a_stream_sends_no_heartbeat_while_tokens_keep_coming(
    start_server, stub, client_for, alice
):
    # Between two tokens the stream waits for the next one; a wake-up left set would send
    # heartbeats in a busy loop instead.
    server = start_server(CHATSITE_HEARTBEAT_SECONDS="60")
    client = client_for(alice, base_url=server.url)
    gate = Gate()
    rest = openai_stream(["b"]).steps[1:]  # "b", then the finish, usage and [DONE]
    stub.queue(Script(steps=[openai_chunk(""), openai_chunk("a"), gate, *rest]))
    conversation = client.new_conversation()
    body = client.send(conversation["id"], "Hi").json()
    received, opened = b"", False
    with client.http.stream("GET", body["stream_url"]) as response:
        for chunk in response.iter_bytes():
            received += chunk
            if b'"a"' in received and not opened:
                gate.wait_reached()
                gate.open()
                opened = True
    assert b"event: done" in received
    assert b'"b"' in received
    assert PING not in received


def test_a_finished_reply_streams_its_stored_content_and_done_at_once(
    start_server, stub, client_for, alice
):
    # No retention: the finished reply is streamed from the database, not the event log.
    server = start_server(CHATSITE_EVENT_RETENTION_SECONDS="0")
    client = client_for(alice, base_url=server.url)
    stub.queue(openai_stream(["Stored", " reply"]))
    conversation = client.new_conversation()
    body = client.send(conversation["id"], "Hi").json()
    client.wait_final(conversation["id"], body["assistant_message"]["id"])

    events = client.events(body["stream_url"])
    assert [e.name for e in events] == ["delta", "done"]
    assert text_of(events) == "Stored reply"
    assert events[-1].data["message"]["content"] == "Stored reply"
    resumed = client.events(body["stream_url"], headers={"Last-Event-ID": "3"})
    assert [(e.id, e.name) for e in resumed] == [(4, "done")]
    assert len(stub.requests) == 1  # streaming a stored reply never generates again
    assert Message.objects.filter(conversation_id=conversation["id"]).count() == 2


def test_stream_of_a_user_message_is_a_400(server, stub, alice_client):
    conversation = alice_client.new_conversation()
    body = alice_client.send(conversation["id"], "Hi").json()
    response = alice_client.http.get(f"/api/messages/{body['user_message']['id']}/stream/")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "not_a_reply"


def test_done_and_error_events_carry_the_reply_exactly_as_stored(server, stub, alice_client):
    stub.queue(openai_stream(["Stored", " as", " sent"], usage=(13, 3)))
    stub.queue(json_error(400, "The model refused the request."))
    for final_event in ("done", "error"):
        _, events, stored = ask(alice_client, "Hi")
        assert events[-1].name == final_event
        assert events[-1].data["message"] == stored  # every field, as the API reads it back
    assert stored["status"] == "failed"


def relayed_burst(alice, stub, tokens: list[str]) -> tuple[list[tuple[int, bytes]], Message]:
    """A reply the provider sends in one write (so one read), relayed in this process: the
    groups of frames its stream is handed, and the reply."""
    stub.reset()
    whole_reply = b"".join(openai_stream(tokens).steps)
    stub.queue(Script(steps=[whole_reply]))
    conversation = Conversation.objects.create(owner=alice, model=default_model().id)
    _, reply, _ = conversation.post_user_message("Hi", default_model(), None, PRODUCER_ID)

    async def followed() -> list[tuple[int, bytes]]:
        await start_reply(reply, stub_job(reply, stub))
        frames = await event_log().follow(reply.pk, 0, 60)
        groups = [group async for group in frames]
        await http.client().aclose()  # its kept connection must not outlive this loop
        return groups

    return asyncio.run(followed()), reply


def test_a_burst_of_tokens_is_relayed_in_turns(stub, alice, monkeypatch):
    # One read from the provider can hold hundreds of tokens. Relaying them all in one go
    # held the event loop: this reply's own stream and every other request waited.
    monkeypatch.setattr(relay, "TURN_EVENTS", 1)  # a turn after every token
    tokens = [f" t{n}" for n in range(200)]  # ~25 KB
    groups, reply = relayed_burst(alice, stub, tokens)
    batches = [frame for _, frame in groups if b"event: delta" in frame]
    assert b"".join(batches).count(b"event: delta") == len(tokens)
    assert len(batches) > len(tokens) // 2  # all in one batch when the loop never got a turn
    reply.refresh_from_db()
    assert (reply.status, reply.content) == (Message.Status.COMPLETE, "".join(tokens))


def test_the_first_token_of_a_burst_is_handed_on_before_the_rest_is_relayed(alice, stub):
    # Its first token must reach the streams at once, not after the producer's turn of
    # relaying the rest (TURN_EVENTS as configured).
    tokens = [f"t{n} " for n in range(40)]
    groups, _ = relayed_burst(alice, stub, tokens)
    first_id, first = groups[0]
    assert first_id == 1 and first.count(b"event: delta") == 1
    assert text_of(list(read_events(iter(frame for _, frame in groups)))) == "".join(tokens)


def first_frames_of_a_silent_stream(alice, heartbeats: int) -> list[bytes]:
    """The first frames of the stream of a reply whose log is open but silent, while the
    database already holds it complete (its producer gone), heartbeats due every 10 ms."""
    conversation = Conversation.objects.create(owner=alice, model=default_model().id)
    _, reply, _ = conversation.post_user_message("Hi", default_model(), None, PRODUCER_ID)
    Message.objects.filter(pk=reply.pk).update(status=Message.Status.COMPLETE, content="Stored")

    async def first_frames() -> list[bytes]:
        await event_log().open(reply.pk)
        frames, seen = reply_events(reply.pk, 0, heartbeat_seconds=0.01), []
        async for frame in frames:
            seen.append(frame)
            if len(seen) > heartbeats or frame not in (HEARTBEAT, RETRY_HINT):
                break
        await frames.aclose()
        return seen

    return asyncio.run(first_frames())


def test_a_silent_stream_reads_its_reply_back_only_every_heartbeat_interval(alice, settings):
    # Heartbeats come as often as the stream's key or session is re-checked (every 5 s by
    # default); reading the reply back from the database each time cost a query per stream.
    settings.CHATSITE_HEARTBEAT_SECONDS = 3600
    assert first_frames_of_a_silent_stream(alice, 5) == [RETRY_HINT] + [HEARTBEAT] * 5
    settings.CHATSITE_HEARTBEAT_SECONDS = 0.001  # due at once: the stored reply ends it
    frames = first_frames_of_a_silent_stream(alice, 5)
    assert b"event: done" in frames[-1] and b"Stored" in frames[-1]


def test_a_reply_no_event_log_knows_yet_beats_as_often_as_a_followed_one(alice, settings):
    # Its stream waits for the reply's log in steps of CHATSITE_CHECKPOINT_SECONDS, beating
    # at each; a page takes three missed heartbeats for a dead line: no step is longer.
    settings.CHATSITE_CHECKPOINT_SECONDS = 3600
    conversation = Conversation.objects.create(owner=alice, model=default_model().id)
    _, reply, _ = conversation.post_user_message("Hi", default_model(), None, PRODUCER_ID)

    async def first_frames() -> list[tuple[int, bytes]]:
        frames, seen = stored_reply_events(reply.pk, 0, heartbeat_seconds=0.01), []
        async for frame in frames:
            seen.append(frame)
            if len(seen) == 3:
                break
        await frames.aclose()
        return seen

    # A guard, not a timing: a step of an hour fails here instead of hanging the suite.
    assert asyncio.run(asyncio.wait_for(first_frames(), 30)) == [(0, HEARTBEAT)] * 3
