"""Token usage (the provider's, else a marked estimate) and reasoning kept out of the reply."""

import pytest

from conversations.models import Message
from tests.client import text_of
from tests.servers import SECRET_PROVIDER_KEY
from tests.stub import Script, openai_chunk, openai_stream, sse


def chat(client, content: str = "Hi") -> tuple[list, dict]:
    """Send one message in a new conversation, follow its stream; return events and reply."""
    conversation = client.new_conversation()
    response = client.send(conversation["id"], content)
    assert response.status_code == 201, response.text
    body = response.json()
    events = client.events(body["stream_url"])
    reply = client.wait_final(conversation["id"], body["assistant_message"]["id"])
    return events, reply


def chunk(delta: dict, choices: bool = True, **extra: object) -> bytes:
    """A chat.completion.chunk exactly as given (explicit nulls included)."""
    payload = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "model": "stub-model"}
    payload["choices"] = [{"index": 0, "delta": delta, "finish_reason": None}] if choices else []
    return sse({**payload, **extra})


def test_usage_is_estimated_and_marked_when_the_provider_sends_none(server, stub, alice_client):
    stub.queue(openai_stream(["A fairly", " long answer", " to estimate."], usage=None))
    events, reply = chat(alice_client, "Tell me something, at some length please")
    assert reply["status"] == "complete"
    assert reply["content"] == "A fairly long answer to estimate."
    assert reply["usage_source"] == "estimated"
    prompt, completion, total = (
        reply["prompt_tokens"],
        reply["completion_tokens"],
        reply["total_tokens"],
    )
    assert prompt > 0 and completion > 0
    assert total == prompt + completion
    done = events[-1].data["message"]
    assert done["usage_source"] == "estimated"
    assert (done["prompt_tokens"], done["completion_tokens"]) == (prompt, completion)


def test_estimate_grows_with_the_reply(server, stub, alice_client):
    # An estimate that ignored the text (a constant, or zero) would not pass this.
    stub.queue(openai_stream(["Short."], usage=None))
    stub.queue(openai_stream(["Much longer. " * 40], usage=None))
    _, short = chat(alice_client)
    _, long = chat(alice_client)
    assert long["completion_tokens"] > short["completion_tokens"] * 10
    assert short["prompt_tokens"] == long["prompt_tokens"]


def test_provider_usage_is_stored_and_marked_provider(server, stub, alice_client):
    stub.queue(openai_stream(["Hi"], usage=(42, 9)))
    _, reply = chat(alice_client)
    assert (reply["prompt_tokens"], reply["completion_tokens"], reply["total_tokens"]) == (
        42,
        9,
        51,
    )
    assert reply["usage_source"] == "provider"


def test_request_asks_for_usage_in_the_stream(server, stub, alice_client):
    stub.queue(openai_stream(["Hi"]))
    chat(alice_client, "What is usage?")
    request = stub.requests[0]
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == f"Bearer {SECRET_PROVIDER_KEY}"
    body = request.json
    assert body["model"] == "stub-model"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"][-1] == {"role": "user", "content": "What is usage?"}


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_is_streamed_and_stored_apart_from_the_reply(server, stub, alice_client, field):
    """DeepSeek and Qwen send delta.reasoning_content, Ollama sends delta.reasoning."""
    stub.queue(
        Script(
            steps=[
                chunk({"role": "assistant", "content": None, field: ""}),
                chunk({"content": None, field: "The user asks 2+2."}),
                chunk({"content": None, field: " That is 4."}),
                chunk({"content": "The answer", field: None}),
                chunk({"content": " is 4.", field: None}),
                openai_chunk(finish_reason="stop"),
                sse(
                    {
                        "id": "chatcmpl-stub",
                        "choices": [],
                        "usage": {
                            "prompt_tokens": 10,
                            "completion_tokens": 20,
                            "total_tokens": 30,
                            "completion_tokens_details": {"reasoning_tokens": 12},
                        },
                    }
                ),
                sse("[DONE]"),
            ]
        )
    )
    events, reply = chat(alice_client, "What is 2+2?")
    reasoning = "".join(e.data["content"] for e in events if e.name == "reasoning")
    assert reasoning == "The user asks 2+2. That is 4."
    assert text_of(events) == "The answer is 4."
    assert [e.name for e in events] == ["reasoning"] * 2 + ["delta"] * 2 + ["done"]
    assert reply["content"] == "The answer is 4."
    assert reply["reasoning"] == "The user asks 2+2. That is 4."
    assert "2+2" not in reply["content"]
    assert (reply["completion_tokens"], reply["reasoning_tokens"]) == (20, 12)
    stored = Message.objects.get(pk=reply["id"])
    assert (stored.content, stored.reasoning) == (reply["content"], reply["reasoning"])


def test_reasoning_only_reply_keeps_content_empty(server, stub, alice_client):
    stub.queue(
        Script(
            steps=[
                openai_chunk(reasoning="Only thinking."),
                openai_chunk(finish_reason="length"),
                sse("[DONE]"),
            ]
        )
    )
    events, reply = chat(alice_client)
    assert [e.name for e in events] == ["reasoning", "done"]
    assert (reply["content"], reply["reasoning"]) == ("", "Only thinking.")
    assert reply["finish_reason"] == "length"


def test_chunks_with_empty_choices_are_skipped(server, stub, alice_client):
    stub.queue(
        Script(
            steps=[
                # Azure sends prompt filter results first, with no choices at all.
                chunk({}, choices=False, prompt_filter_results=[{"prompt_index": 0}]),
                openai_chunk("Hello"),
                chunk({}, choices=False, usage=None),
                sse({"id": "chatcmpl-stub", "choices": None}),
                openai_chunk(" there"),
                openai_chunk(finish_reason="stop"),
                chunk({}, choices=False, usage={"prompt_tokens": 3, "completion_tokens": 2}),
                sse("[DONE]"),
            ]
        )
    )
    events, reply = chat(alice_client)
    assert text_of(events) == reply["content"] == "Hello there"
    assert reply["status"] == "complete"
    assert (reply["prompt_tokens"], reply["completion_tokens"], reply["total_tokens"]) == (3, 2, 5)
    assert reply["usage_source"] == "provider"
