"""The OpenAI-compatible endpoint, driven by OpenAI's own Python SDK: a completion in one
request, streamed or whole, stored as a conversation of the key's owner."""

import json
import socket
import urllib.parse

import httpx
import openai
import pytest

from conversations.apikeys import create_key, revoke_key
from conversations.models import Conversation, Message, UserBudget
from conversations.providers.registry import available_models
from conversations.reply_job import load_job, transcript_job
from conversations.transcripts import Transcript, start_transcript
from tests.client import wait_for
from tests.servers import SECRET_PROVIDER_KEY
from tests.stub import Gate, gated_stream, json_error, openai_stream

MODEL = "openai:stub-model"
HISTORY = [
    {"role": "system", "content": "Answer in one word."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello"},
    {"role": "user", "content": [{"type": "text", "text": "How"}, {"type": "text", "text": "?"}]},
]


@pytest.fixture
def alice_key(alice) -> str:
    return create_key(alice, "sdk")[1]


@pytest.fixture
def sdk(server, alice_key):
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=alice_key, max_retries=0) as client:
        yield client


def stored_reply() -> Message:
    """The reply chatsite generated (not an earlier answer from the client's history), final."""
    replies = Message.objects.filter(role="assistant").exclude(provider="")
    final = replies.exclude(status__in=Message.ACTIVE_STATUSES)
    return wait_for(final.first, "the stored reply")


def test_sdk_streams_a_reply_that_is_stored_with_the_history(sdk, stub, alice):
    stub.queue(openai_stream(["Fine", ", thanks"], usage=(21, 3)))
    chunks = list(
        sdk.chat.completions.create(
            model=MODEL, messages=HISTORY, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Fine, thanks"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.prompt_tokens == 21 and chunks[-1].usage.completion_tokens == 3
    assert {c.id for c in chunks} == {chunks[0].id} and chunks[0].model == MODEL

    sent = stub.requests[-1].json  # what the provider was asked: the client's whole history
    assert sent["messages"] == [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "How\n?"},
    ]
    conversation = Conversation.objects.get()
    assert conversation.owner == alice and conversation.title == "Hi"
    reply = stored_reply()
    assert chunks[0].id == f"chatcmpl-{reply.pk.hex}"
    assert (reply.status, reply.content, reply.total_tokens) == ("complete", "Fine, thanks", 24)
    roles = list(conversation.messages.values_list("role", "content"))
    assert roles == [
        ("system", "Answer in one word."),
        ("user", "Hi"),
        ("assistant", "Hello"),
        ("user", "How\n?"),
        ("assistant", "Fine, thanks"),
    ]


def test_sdk_gets_the_whole_completion_without_stream(sdk, stub):
    stub.queue(openai_stream(["One", " word"], usage=(5, 2)))
    raw = sdk.chat.completions.with_raw_response.create(model=MODEL, messages=HISTORY[1:2])
    answer = raw.parse()
    assert answer.choices[0].message.content == "One word"
    assert answer.choices[0].finish_reason == "stop"
    assert (answer.usage.prompt_tokens, answer.usage.total_tokens) == (5, 7)
    reply = stored_reply()
    assert raw.headers["X-Chatsite-Message"] == str(reply.pk)
    assert raw.headers["X-Chatsite-Conversation"] == str(reply.conversation_id)
    assert stub.requests[-1].json["messages"] == [{"role": "user", "content": "Hi"}]


def test_reasoning_arrives_as_reasoning_content(sdk, stub):
    stub.queue(openai_stream(["Done"], usage=None, reasoning=["Thinking"]))
    chunks = list(sdk.chat.completions.create(model=MODEL, messages=HISTORY[1:2], stream=True))
    deltas = [c.choices[0].delta for c in chunks]
    assert "".join(getattr(d, "reasoning_content", None) or "" for d in deltas) == "Thinking"
    assert "".join(d.content or "" for d in deltas) == "Done"
    assert stored_reply().reasoning == "Thinking"


def test_provider_failure_is_an_error_for_the_sdk_and_stored_as_failed(sdk, stub):
    stub.queue(json_error(400, "This model does not exist"))
    with pytest.raises(openai.APIStatusError) as failure:
        sdk.chat.completions.create(model=MODEL, messages=HISTORY[1:2])
    assert failure.value.status_code == 502
    assert "does not exist" in failure.value.message
    assert SECRET_PROVIDER_KEY not in failure.value.response.text

    stub.queue(json_error(400, "Bad request to the provider"))
    with pytest.raises(openai.APIError, match="Bad request to the provider"):
        list(sdk.chat.completions.create(model=MODEL, messages=HISTORY[1:2], stream=True))
    statuses = Message.objects.filter(role="assistant").values_list("status", flat=True)
    assert list(statuses) == ["failed", "failed"]


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


def test_a_client_that_leaves_before_a_whole_completion_stops_its_reply(server, stub, alice_key):
    gate = Gate()
    stub.queue(gated_stream(["Half"], gate, after=[" of it"]))
    body = json.dumps({"model": MODEL, "messages": HISTORY[1:2]}).encode()
    url = urllib.parse.urlsplit(server.url)
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: Bearer {alice_key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((url.hostname, url.port)) as client:
        client.sendall(request + body)
        gate.wait_reached()
        # The reply has its first token (saved as streaming); the client gives up waiting.
        wait_for(Message.objects.filter(status="streaming").first, "the reply streaming")
    assert stub.requests[-1].wait_disconnected(), "the provider was still generating"
    reply = stored_reply()
    assert (reply.status, reply.content, reply.error_code) == (
        "stopped", "Half", "client_disconnected"
    )  # fmt: skip
    gate.open()


def test_a_client_that_reads_to_the_end_gets_a_complete_reply_without_a_stop_reason(sdk, stub):
    stub.queue(openai_stream(["All", " of it"]))
    chunks = list(sdk.chat.completions.create(model=MODEL, messages=HISTORY[1:2], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "All of it"
    reply = stored_reply()
    assert (reply.status, reply.error_code, reply.error) == ("complete", "", "")


def test_models_lists_the_configured_models(sdk):
    assert [model.id for model in sdk.models.list()] == ["openai:stub-model", "openai:stub-other"]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"model": "openai:nope"}, "Unknown model 'openai:nope'"),
        ({"model": None}, "model"),
        ({"messages": []}, "messages"),
        (
            {"messages": [*HISTORY[1:2], {"role": "tool", "content": "x"}]},
            'messages: item 1: role: "tool" messages are not supported here.',
        ),
        ({"messages": HISTORY[1:3]}, "starting and ending with a user one"),
        ({"messages": [{"role": "user", "content": 42}]}, "Must be text"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            'Only text parts are supported here; this one is "image_url"',
        ),
        ({"messages": [{"role": "user", "content": "  "}]}, "The last user message is empty"),
        ({"n": 2}, "Only one choice (n=1)"),
        ({"tools": [{"type": "function"}]}, "Tools (function calling) are not supported"),
        ({"temperature": 3}, "temperature: Ensure this value is less than or equal to 2"),
        ({"max_tokens": 0}, "max_tokens: Ensure this value is greater than or equal to 1"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop: Must be a string or a list of up to 4"),
        ({"logprobs": True}, "logprobs: Log probabilities are not supported here."),
        ({"top_logprobs": 2}, "top_logprobs: Log probabilities are not supported here."),
        ({"response_format": {"type": "xml"}}, 'response_format: Must be {"type": "text"}'),
        ({"response_format": {"type": "json_schema"}}, 'response_format: Must be {"type"'),
        ({"presence_penalty": 2.5}, "presence_penalty: Ensure this value is less than or equal"),
        ({"logit_bias": {"50256": -101}}, "logit_bias: 50256: Ensure this value is greater"),
        ({"seed": "x"}, "seed: A valid integer is required."),
    ],
)
def test_bad_requests_get_400_saying_what_is_wrong_and_store_nothing(
    server, stub, alice_key, change, says
):
    body = {"model": MODEL, "messages": HISTORY, **change}
    if change.get("model", "") is None:
        del body["model"]
    headers = {"Authorization": f"Bearer {alice_key}"}
    response = httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 400, response.text
    assert says in response.json()["error"]["message"]
    assert not Conversation.objects.exists() and not Message.objects.exists()
    assert not stub.requests


# Sent as JSON text (escapes and all): values a database or a JSON encoder cannot take, from
# options kept with the reply to text that is stored.
UNSTORABLE = [
    ({"stop": "\ud800"}, "stop: Surrogate characters are not allowed: U+D800."),
    ({"stop": ["ok", "a\u0000"]}, "stop: Null characters are not allowed."),
    ({"max_tokens": 10**30}, "max_tokens: Must be a whole number within 64 bits."),
    ({"seed": -(10**30)}, "seed: Must be a whole number within 64 bits."),
    ({"logit_bias": {"\udc00": 1}}, "logit_bias: Surrogate characters are not allowed"),
    (
        {"response_format": {"type": "json_schema", "json_schema": {"name": "a\u0000"}}},
        "response_format: Null characters are not allowed.",
    ),
    ({"messages": [{"role": "user", "content": "a\ud800b"}]}, "content: Surrogate characters"),
    ({"messages": [{"role": "user", "content": "a\u0000b"}]}, "content: Null characters"),
    (
        {"messages": [{"role": "system", "content": "\ud800"}, HISTORY[1]]},
        "content: Surrogate characters",
    ),
    (
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "\udc00"}]}]},
        "content: Surrogate characters",
    ),
    (
        {"messages": [{"role": "user", "content": [{"type": "text"}]}]},
        'content: A text part needs its "text", a string.',
    ),
    ({"stream": "yes"}, "stream: Must be a valid boolean."),
]


def assert_raw_body_refused(server, stub, alice_key: str, body: str, says: str) -> None:
    """POST `body`, JSON text as written, to /v1: a 400 that says `says`, and nothing done."""
    headers = {"Authorization": f"Bearer {alice_key}", "Content-Type": "application/json"}
    url = f"{server.url}/v1/chat/completions"
    response = httpx.post(url, content=body.encode(), headers=headers)
    assert response.status_code == 400, response.text
    assert says in response.json()["error"]["message"]
    assert not Conversation.objects.exists() and not Message.objects.exists()
    assert not stub.requests


@pytest.mark.parametrize(("change", "says"), UNSTORABLE)
def test_text_and_numbers_that_cannot_be_stored_get_400_and_store_nothing(
    server, stub, alice_key, change, says
):
    body = json.dumps({"model": MODEL, "messages": HISTORY, **change})  # escapes kept as such
    assert_raw_body_refused(server, stub, alice_key, body, says)


@pytest.mark.parametrize(
    ("response_format", "says"),
    [
        ('{"type": "json_object", "x": 1e400}', "response_format: Must be a finite number."),
        ('{"type": "json_object", "x": %s}' % ("[" * 300 + "]" * 300), "Nested too deeply"),
        ('{"type": "json_object", "x": %s}' % ("[" * 5000 + "]" * 5000), "nested too deeply"),
    ],
    ids=["number-read-as-infinite", "nested-past-the-limit", "nested-past-the-json-module"],
)
def test_json_no_encoder_or_database_takes_is_a_400(server, stub, alice_key, response_format, says):
    body = json.dumps({"model": MODEL, "messages": HISTORY}).removesuffix("}")
    body += f', "response_format": {response_format}}}'  # what json.dumps would not write
    assert_raw_body_refused(server, stub, alice_key, body, says)


def test_without_a_valid_key_the_answer_is_401(server, stub, alice, alice_key):
    body = {"model": MODEL, "messages": HISTORY}
    url = f"{server.url}/v1/chat/completions"
    assert httpx.post(url, json=body).status_code == 401
    key = alice.api_keys.get()
    revoke_key(key)
    refused = httpx.post(url, json=body, headers={"Authorization": f"Bearer {alice_key}"})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{server.url}/v1/models").status_code == 401
    assert not Message.objects.exists() and not stub.requests


def test_the_budget_applies_and_the_conversation_is_the_key_owners_alone(
    sdk, stub, alice, client_for, charlie
):
    UserBudget.objects.create(user=alice, requests_per_minute=1)
    sdk.chat.completions.create(model=MODEL, messages=HISTORY[1:2])
    with pytest.raises(openai.RateLimitError, match="limit of 1 requests per minute"):
        sdk.chat.completions.create(model=MODEL, messages=HISTORY[1:2])
    assert len(stub.requests) == 1
    conversation = Conversation.objects.get()
    mine = client_for(alice).http.get(f"/api/conversations/{conversation.pk}/")
    assert mine.status_code == 200
    assert client_for(charlie).http.get(f"/api/conversations/{conversation.pk}/").status_code == 404
    assert client_for(charlie).http.get("/api/conversations/").json()["results"] == []


def test_unknown_paths_under_v1_answer_json_404(server):
    response = httpx.get(f"{server.url}/v1/completions")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_sampling_options_are_passed_on_and_kept_with_the_reply(sdk, stub):
    stub.queue(openai_stream(["Sure"]))
    sdk.chat.completions.create(
        model=MODEL, messages=HISTORY[1:2], temperature=0.2, top_p=0.5, max_tokens=9, stop="X"
    )
    sent = stub.requests[-1].json
    options = {"temperature": 0.2, "top_p": 0.5, "max_tokens": 9, "stop": ["X"]}
    assert {name: sent[name] for name in options} == options
    reply = stored_reply()
    assert reply.metadata["options"] == options and reply.metadata["attempts"]


def test_max_completion_tokens_reaches_a_server_other_than_openais_as_max_tokens(sdk, stub):
    # DeepSeek, Ollama and Qwen know only max_tokens, and ignore the newer name.
    stub.queue(openai_stream(["Sure"]))
    sdk.chat.completions.create(model=MODEL, messages=HISTORY[1:2], max_completion_tokens=9)
    sent = stub.requests[-1].json
    assert sent["max_tokens"] == 9 and "max_completion_tokens" not in sent


def test_openais_own_options_reach_an_openai_compatible_provider_as_they_are(sdk, stub):
    stub.queue(openai_stream(['{"ok": true}']))
    own = {
        "seed": 7,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "response_format": {"type": "json_object"},
        "logit_bias": {"50256": -100.0},
    }
    sdk.chat.completions.create(model=MODEL, messages=HISTORY[1:2], logprobs=False, **own)
    sent = stub.requests[-1].json
    assert {name: sent[name] for name in own} == own
    assert "logprobs" not in sent  # false: nothing asked, nothing to refuse
    assert stored_reply().metadata["options"] == own


def test_the_default_response_format_is_not_sent(sdk, stub):
    stub.queue(openai_stream(["Plain"]))
    sdk.chat.completions.create(
        model=MODEL, messages=HISTORY[1:2], response_format={"type": "text"}
    )
    assert "response_format" not in stub.requests[-1].json


def test_null_sampling_options_count_as_unset(server, stub, alice_key):
    stub.queue(openai_stream(["Sure"]))
    body = {"model": MODEL, "messages": HISTORY[1:2], "temperature": None, "stop": None}
    headers = {"Authorization": f"Bearer {alice_key}"}
    response = httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert "temperature" not in stub.requests[-1].json and "stop" not in stub.requests[-1].json


def test_a_transcripts_request_is_the_one_its_stored_conversation_gives(alice):
    """The endpoint builds the provider request from the transcript it has just stored; the
    conversation read back (as a producer elsewhere or a regenerate reads it) gives the same."""
    transcript = Transcript(
        system="Be brief.",
        turns=[
            ("user", "Hi"),
            ("assistant", ""),
            ("user", "Again"),
            ("assistant", "No"),
            ("user", "?"),
        ],
        options={"temperature": 0.1},
    )
    model = available_models()[0]
    reply = start_transcript(alice, model, transcript, "test")
    built = transcript_job(reply, transcript).request
    assert built == load_job(Message.objects.select_related("parent").get(pk=reply.pk)).request
    assert built.system == "Be brief." and built.options == {"temperature": 0.1}
    assert [m["content"] for m in built.messages] == ["Hi", "Again", "No", "?"]


def test_the_demo_models_usage_is_an_estimate_that_counts_the_system_prompt(
    start_server, alice_key
):
    demo = start_server(CHATSITE_DEMO="true", CHATSITE_DEMO_TOKENS_PER_SECOND="0")
    with openai.OpenAI(base_url=f"{demo.url}/v1", api_key=alice_key, max_retries=0) as client:

        def prompt_tokens(messages: list[dict]) -> int:
            answer = client.chat.completions.create(model="demo:chatsite-demo", messages=messages)
            assert answer.choices[0].message.content.startswith("**This is chatsite's demo")
            return answer.usage.prompt_tokens

        asked = [{"role": "user", "content": "Hi"}]
        bare = prompt_tokens(asked)
        system = {"role": "system", "content": "Answer as a pirate would, in long sentences."}
        with_system = prompt_tokens([system, *asked])
    # About four characters a token, and four for each message (conversations/usage.py).
    system_tokens = -(-len(system["content"]) // 4) + 4
    assert (bare, with_system) == (1 + 4, bare + system_tokens)
    assert set(Message.objects.filter(provider="demo").values_list("usage_source", flat=True)) == {
        "estimated"
    }
