from tests.client import text_of
from tests.stub import openai_stream


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
