import gzip

from tests.client import text_of
from tests.stub import Script, openai_stream


def test_streamed_reply_is_stored_once_with_provider_usage(server, stub, alice_client):
    stub.queue(openai_stream(["Hel", "lo", " world"], usage=(12, 3)))
    conversation = alice_client.new_conversation()
    response = alice_client.send(conversation["id"], "Say hello")
    assert response.status_code == 201, response.text
    body = response.json()
    events = alice_client.events(body["stream_url"])
    assert text_of(events) == "Hello world"
    assert events[-1].name == "done"
    reply = alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])
    assert reply["content"] == "Hello world"
    assert reply["status"] == "complete"
    assert (reply["prompt_tokens"], reply["completion_tokens"], reply["total_tokens"]) == (
        12,
        3,
        15,
    )
    assert reply["usage_source"] == "provider"
    request = stub.requests[0]
    assert request.json["stream"] is True
    assert request.json["stream_options"] == {"include_usage": True}


def test_compressed_provider_stream_is_decoded(server, stub, alice_client):
    # Most providers send event streams as they are; one that gzips them is read all the same.
    plain = b"".join(step for step in openai_stream(["Zipped", " reply"]).steps)
    packed = gzip.compress(plain)
    headers = {"Content-Type": "text/event-stream", "Content-Encoding": "gzip"}
    stub.queue(Script(headers=headers, steps=[packed[:20], packed[20:]]))
    conversation = alice_client.new_conversation()
    body = alice_client.send(conversation["id"], "Say it zipped").json()
    events = alice_client.events(body["stream_url"])
    assert text_of(events) == "Zipped reply"
    reply = alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])
    assert (reply["status"], reply["content"]) == ("complete", "Zipped reply")
