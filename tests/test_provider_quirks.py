"""What providers send that is odd but no failure: the reply is stored whole all the same.

The stub writes each as real bytes: a character's halves in two chunks, a finish reason
without [DONE], a response held open after the reply ended, text after a finish reason.
"""

import json

import pytest

from tests.client import text_of
from tests.replies import ask, send_in_new_conversation
from tests.stub import Gate, Script, openai_chunk, openai_stream, openai_usage, sse


def escaped_chunk(json_text: str) -> bytes:
    """A content chunk whose JSON string is written as given (\\u escapes included)."""
    return b'data: {"choices": [{"delta": {"content": "%s"}}]}\n\n' % json_text.encode()


@pytest.mark.parametrize(
    ("json_texts", "stored"),
    [
        # A server cutting text by UTF-16 units sends an emoji's two halves in two chunks.
        (["Smile \\ud83d", "\\ude00!"], "Smile \N{GRINNING FACE}!"),
        # A half whose other half never comes, mid-reply or at its end.
        (["A\\ud83d", " b", "c\\ud83d"], "A\ufffd bc\ufffd"),
        # NUL is a character JSON can carry but PostgreSQL's text cannot hold.
        (["a\\u0000b"], "a\ufffdb"),
    ],
    ids=["split-character-joined", "lone-halves-replaced", "nul-replaced"],
)
def test_halves_of_a_character_are_joined_or_replaced(
    server, stub, alice_client, json_texts, stored
):
    chunks = [escaped_chunk(text) for text in json_texts]
    stub.queue(Script(steps=[openai_chunk(""), *chunks, *openai_stream([]).steps[1:]]))
    conversation, body = send_in_new_conversation(alice_client)
    events = alice_client.events(body["stream_url"])
    reply = alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])
    assert reply["status"] == "complete"
    assert reply["content"] == text_of(events) == stored


def test_stream_ending_without_done_but_with_finish_reason_completes(server, stub, alice_client):
    # The counterpart of test_stream_ending_without_done_or_finish_reason_fails
    # (test_provider_failures.py): a finish reason alone makes the reply whole.
    stub.queue(Script(steps=[openai_chunk("Hello"), openai_chunk(finish_reason="length")]))
    _, events, reply = ask(alice_client)
    assert events[-1].name == "done"
    assert (reply["status"], reply["finish_reason"], reply["content"]) == (
        "complete",
        "length",
        "Hello",
    )


def test_reply_completes_when_the_provider_holds_its_response_open_after_done(
    server, stub, alice_client
):
    # chatsite reads past [DONE] to keep the connection; a provider that never ends the
    # response must not hold the reply: it is stored complete and the connection dropped.
    gate = Gate()
    held_open = openai_stream(["Hello"], usage=(4, 1))
    held_open.steps.append(gate)
    stub.queue(held_open)
    try:
        conversation, body = send_in_new_conversation(alice_client)
        # Waited for first, within the suite's bounded wait: a relay that waited for the
        # held-open response to end would sit there until the 300 s read timeout.
        reply = alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])
        events = alice_client.events(body["stream_url"])
        assert events[-1].name == "done"
        assert (reply["status"], reply["content"], reply["completion_tokens"]) == (
            "complete",
            "Hello",
            1,
        )
        assert stub.requests[0].wait_disconnected(), "the held-open response was not dropped"
    finally:
        gate.open()


@pytest.mark.parametrize("with_usage", [True, False], ids=["usage-then-held", "held-at-finish"])
def test_reply_completes_when_the_provider_holds_its_response_open_without_done(
    server, stub, alice_client, with_usage
):
    # A finish reason means the reply is whole: its usage is waited for briefly, [DONE] not
    # at all (some servers send neither and keep the response open).
    gate = Gate()
    steps = [openai_chunk("Hello"), openai_chunk(finish_reason="stop")]
    steps += [openai_usage(4, 1)] if with_usage else []
    stub.queue(Script(steps=[*steps, gate]))
    try:
        conversation, body = send_in_new_conversation(alice_client)
        reply = alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])
        assert (reply["status"], reply["content"]) == ("complete", "Hello")
        if with_usage:
            assert (reply["usage_source"], reply["total_tokens"]) == ("provider", 5)
        else:  # after QUIET_AFTER_FINISH_SECONDS
            assert reply["usage_source"] == "estimated" and reply["total_tokens"] > 0
        assert alice_client.events(body["stream_url"])[-1].name == "done"
    finally:
        gate.open()


def test_text_after_a_finish_reason_is_kept_and_the_last_usage_counts(server, stub, alice_client):
    # Some servers mark every chunk (or a reasoning chunk) finished, and send usage before
    # the end: the reply is what came until [DONE], with the usage sent last.
    usage_first = sse(
        {"choices": [{"delta": {"content": "The answer"}}], "usage": {"prompt_tokens": 10,
         "completion_tokens": 1, "total_tokens": 11}}
    )  # fmt: skip
    stub.queue(
        Script(
            steps=[
                openai_chunk(reasoning="thinking", finish_reason="stop"),
                usage_first,
                openai_chunk(" is 42", finish_reason="stop"),
                openai_usage(10, 50),
                sse("[DONE]"),
            ]
        )
    )
    conversation, body = send_in_new_conversation(alice_client)
    reply = alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])
    assert (reply["status"], reply["content"], reply["reasoning"]) == (
        "complete",
        "The answer is 42",
        "thinking",
    )
    assert (reply["usage_source"], reply["total_tokens"]) == ("provider", 60)


def test_content_sent_as_a_list_of_parts_is_read_as_its_text_parts(server, stub, alice_client):
    # Some OpenAI-compatible servers send a delta's content as parts, as requests may write it;
    # a part with no text, or content that is no text at all, adds nothing.
    parts = [{"type": "thinking", "thinking": "hm"}, {"type": "text", "text": "Hello"}]
    as_parts = sse({"choices": [{"delta": {"content": parts}}]})
    a_number = sse({"choices": [{"delta": {"content": 42}}]})
    end = openai_stream([]).steps[1:]  # the finish reason, usage and [DONE]
    stub.queue(Script(steps=[openai_chunk(""), as_parts, a_number, openai_chunk(" there"), *end]))
    _, events, reply = ask(alice_client)
    assert (reply["status"], reply["content"]) == ("complete", "Hello there")
    assert text_of(events) == "Hello there"


def test_a_stream_sent_as_json_is_still_read_as_events(server, stub, alice_client):
    # A gateway that labels its event stream application/json: its body is read whole (it may
    # be an error object, test_provider_failures.py), and, holding none, read as events.
    steps = openai_stream(["Labelled", " wrong"]).steps
    stub.queue(Script(headers={"Content-Type": "application/json"}, steps=steps))
    _, events, reply = ask(alice_client)
    assert (reply["status"], reply["content"]) == ("complete", "Labelled wrong")
    assert text_of(events) == "Labelled wrong"


def test_a_whole_completion_answered_to_a_streaming_request_is_the_reply(
    server, stub, alice_client
):
    # Some servers (a gateway, a model that cannot stream) ignore "stream": true and answer
    # with the whole completion, as JSON: it is the reply, with its reasoning and usage (some
    # gateways add "error": null to a success).
    message = {"role": "assistant", "content": "All at once", "reasoning_content": "Quickly"}
    completion = {
        "error": None,
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }
    body = json.dumps(completion).encode()
    stub.queue(Script(headers={"Content-Type": "application/json"}, steps=[body]))
    _, events, reply = ask(alice_client)
    assert (reply["status"], reply["content"], reply["reasoning"]) == (
        "complete",
        "All at once",
        "Quickly",
    )
    assert (reply["finish_reason"], reply["total_tokens"]) == ("length", 8)
    assert text_of(events) == "All at once"


def test_one_chunk_of_a_stream_sent_as_json_is_no_whole_reply(server, stub, alice_client):
    chunk = {"object": "chat.completion.chunk", "choices": [{"delta": {"content": "Half"}}]}
    body = json.dumps(chunk).encode()
    stub.queue(Script(headers={"Content-Type": "application/json"}, steps=[body]))
    _, _, reply = ask(alice_client)
    assert (reply["status"], reply["error_code"]) == ("failed", "connection_dropped")


def test_a_reply_of_only_whitespace_is_not_sent_back_to_the_model(server, stub, alice_client):
    # Left by a Stop just after a newline, say: Anthropic refuses a turn of only whitespace,
    # and every later message of the conversation would fail with it.
    stub.queue(openai_stream(["\n\n"]))
    conversation, body = send_in_new_conversation(alice_client, "Hi")
    blank = alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])
    assert (blank["status"], blank["content"]) == ("complete", "\n\n")
    stub.queue(openai_stream(["Hello"]))
    again = alice_client.send(conversation["id"], "Still there?").json()
    alice_client.wait_final(conversation["id"], again["assistant_message"]["id"])
    assert stub.requests[-1].json["messages"] == [
        {"role": "user", "content": "Hi"},
        {"role": "user", "content": "Still there?"},
    ]
