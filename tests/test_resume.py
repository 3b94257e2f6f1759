"""Resume: event ids are a per-reply sequence; Last-Event-ID replays exactly what was missed."""

import threading

import pytest

from tests.client import read_events, text_of
from tests.stub import Gate, gated_stream, openai_stream

TOKENS = ["One", " two", " three", " four", " five", " six"]


@pytest.fixture
def finished_reply(server, stub, alice_client):
    stub.queue(openai_stream(TOKENS))
    conversation = alice_client.new_conversation()
    body = alice_client.send(conversation["id"], "Count").json()
    alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])
    return body["stream_url"]


@pytest.mark.parametrize("k", [0, 1, 2, 4, 6, 7])
def test_reconnect_with_last_event_id_yields_exactly_the_remaining_events(
    finished_reply, alice_client, k
):
    everything = alice_client.events(finished_reply)
    assert [e.id for e in everything] == list(range(1, len(TOKENS) + 2))
    assert everything[-1].name == "done"

    resumed = alice_client.events(finished_reply, headers={"Last-Event-ID": str(k)})
    assert resumed == everything[k:]


def test_last_event_id_query_parameter_works_like_the_header(finished_reply, alice_client):
    everything = alice_client.events(finished_reply)
    resumed = alice_client.events(f"{finished_reply}?last_event_id=3")
    assert resumed == everything[3:]


def test_reconnect_mid_reply_continues_live_without_gap_or_duplicate(server, stub, alice_client):
    gate = Gate()
    stub.queue(gated_stream(TOKENS[:3], gate, after=TOKENS[3:]))
    conversation = alice_client.new_conversation()
    body = alice_client.send(conversation["id"], "Count").json()
    first = alice_client.events(body["stream_url"], limit=2)  # then the "browser" drops
    assert [e.id for e in first] == [1, 2]

    gate.wait_reached()
    with alice_client.http.stream(
        "GET", body["stream_url"], headers={"Last-Event-ID": "2"}
    ) as response:
        chunks = response.iter_bytes()
        events = []
        reader = read_events(chunks)
        events.append(next(reader))  # the third token, replayed from the log
        gate.open()
        events.extend(reader)
    assert [e.id for e in first + events] == list(range(1, len(TOKENS) + 2))
    assert text_of(first + events) == "".join(TOKENS)


def test_two_streams_of_one_reply_get_identical_event_sequences(
    server, stub, alice_client, client_for, alice
):
    gate = Gate()
    stub.queue(gated_stream(TOKENS[:2], gate, after=TOKENS[2:]))
    conversation = alice_client.new_conversation()
    body = alice_client.send(conversation["id"], "Count").json()
    second_tab = client_for(alice)
    results: dict[str, list] = {}

    def watch(name, client):
        results[name] = client.events(body["stream_url"])

    threads = [
        threading.Thread(target=watch, args=("one", alice_client)),
        threading.Thread(target=watch, args=("two", second_tab)),
    ]
    for thread in threads:
        thread.start()
    gate.wait_reached()
    gate.open()
    for thread in threads:
        thread.join(30)
    assert results["one"] == results["two"]
    assert text_of(results["one"]) == "".join(TOKENS)
    assert len(stub.requests) == 1  # one producer, however many streams


def test_server_closes_long_streams_and_the_client_resumes(start_server, stub, client_for, alice):
    server = start_server(CHATSITE_STREAM_MAX_SECONDS="0.2", CHATSITE_HEARTBEAT_SECONDS="0.05")
    client = client_for(alice, base_url=server.url)
    gate = Gate()
    stub.queue(gated_stream(TOKENS[:2], gate, after=TOKENS[2:]))
    conversation = client.new_conversation()
    body = client.send(conversation["id"], "Count").json()

    # The first connection ends by itself (max age) with no terminal event.
    gate.wait_reached()
    with client.http.stream("GET", body["stream_url"]) as response:
        before = list(read_events(response.iter_bytes()))
    assert [e.name for e in before] == ["delta", "delta"]

    gate.open()
    after = client.events(body["stream_url"], headers={"Last-Event-ID": str(before[-1].id)})
    assert text_of(before + after) == "".join(TOKENS)
    assert after[-1].name == "done"
