"""Anthropic Messages end to end: named events with ping and an unknown type, thinking,
cumulative usage, the system prompt in `system`, and overloaded/rate-limit errors."""

import json

import pytest

from conversations.models import Message
from conversations.providers.anthropic import API_VERSION, AnthropicProvider
from conversations.providers.base import Finish, ProviderError, TextDelta
from tests.client import text_of
from tests.replies import (
    SAMPLING,
    ask,
    assert_stored_reply,
    complete_over_v1,
    openai_only_options_refused,
    post_over_v1,
    read_provider,
)
from tests.servers import serving
from tests.stub import Script
from tests.stub_protocols import (
    PING,
    anthropic_block,
    anthropic_end,
    anthropic_error_event,
    anthropic_http_error,
    anthropic_start,
    anthropic_stream,
    anthropic_whole,
)

KEY = "sk-ant-api03-secret-Zx81Qw"


SYSTEM_PROMPT = "You are terse."


@pytest.fixture(scope="module")
def anthropic_process(django_db_setup, stub):
    """One server for this module: Anthropic only, one model streaming and one not."""
    with serving(
        stub.url,
        ANTHROPIC_API_KEY=KEY,
        ANTHROPIC_BASE_URL=stub.url,
        ANTHROPIC_MODELS="claude-sonnet-4-5,claude-haiku-4-5",
        ANTHROPIC_MAX_TOKENS="321",
        CHATSITE_NON_STREAMING_MODELS="anthropic:claude-haiku-4-5",
        CHATSITE_SYSTEM_PROMPT=SYSTEM_PROMPT,
    ) as process:
        yield process


@pytest.fixture
def client(anthropic_process, client_for, alice):
    return client_for(alice, base_url=anthropic_process.url)


def test_anthropic_reply_streams_past_ping_and_unknown_events(client, stub):
    stub.queue(
        anthropic_stream(["Hello", ", ", "Claude here."], usage=(25, 15), thinking=["Say hi", "."])
    )

    _, events, reply = ask(client, "Hello?")

    assert text_of(events) == "Hello, Claude here."
    assert [e.data["content"] for e in events if e.name == "reasoning"] == ["Say hi", "."]
    request = stub.requests[0]
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == API_VERSION
    assert "authorization" not in request.headers
    assert request.json == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 321,
        "system": SYSTEM_PROMPT,
        "messages": [{"role": "user", "content": "Hello?"}],
        "stream": True,
    }
    # message_start said 1 output token, message_delta 15 in all: 15, not 16.
    assert_stored_reply(reply, "Hello, Claude here.", usage=(25, 15))
    assert reply["reasoning"] == "Say hi."
    assert (reply["provider"], reply["model"]) == ("anthropic", "anthropic:claude-sonnet-4-5")


def test_max_tokens_stop_is_stored_as_length(client, stub):
    stub.queue(anthropic_stream(["Cut"], usage=(5, 321), stop_reason="max_tokens"))
    _, _, reply = ask(client)
    assert_stored_reply(reply, "Cut", usage=(5, 321), finish_reason="length")


def test_overloaded_error_mid_stream_fails_the_reply_keeping_its_text(client, stub):
    steps = [anthropic_start(12), *anthropic_block(0, "text", ["Half a"])[:-1], PING]
    steps.append(anthropic_error_event("overloaded_error", "Overloaded"))
    stub.queue(Script(steps=steps))

    _, events, reply = ask(client)

    assert events[-1].name == "error"
    assert reply["error_code"] == "provider_unavailable"
    assert reply["error"] == "Anthropic had a server error (HTTP 529): Overloaded"
    assert_stored_reply(reply, "Half a", usage=None, status="failed", finish_reason="failed")
    assert len(stub.requests) == 1, "nothing is retried after the first token"


def test_overloaded_error_before_any_text_is_retried(client, stub):
    overloaded = [anthropic_start(12), anthropic_error_event("overloaded_error", "Overloaded")]
    stub.queue(Script(steps=overloaded), anthropic_stream(["Second", " try"], usage=(12, 2)))

    _, _, reply = ask(client)

    outcomes = [(a["outcome"], a.get("status")) for a in reply["metadata"]["attempts"]]
    assert outcomes == [("provider_unavailable", 529), ("ok", None)]
    assert_stored_reply(reply, "Second try", usage=(12, 2))


def test_429_with_retry_after_is_retried_into_one_reply(client, stub):
    stub.queue(
        anthropic_http_error(
            429, "rate_limit_error", "Number of requests has exceeded your rate limit.",
            {"retry-after": "0.5"},
        ),
        anthropic_stream(["Okay"], usage=(6, 1)),
    )  # fmt: skip

    conversation, _, reply = ask(client)

    attempts = reply["metadata"]["attempts"]
    assert [(a["outcome"], a.get("status")) for a in attempts] == [
        ("rate_limited", 429),
        ("ok", None),
    ]
    assert attempts[0]["retry_in_seconds"] == 0.5
    assert_stored_reply(reply, "Okay", usage=(6, 1))
    assert Message.objects.filter(conversation_id=conversation["id"], role="assistant").count() == 1


def test_rejected_key_is_redacted_from_the_error(client, stub, anthropic_process):
    stub.queue(anthropic_http_error(401, "authentication_error", f"invalid x-api-key: {KEY}"))

    _, events, reply = ask(client)

    assert (
        reply["error"] == "Anthropic rejected the API key (HTTP 401): invalid x-api-key: [redacted]"
    )
    assert_stored_reply(reply, "", usage=None, status="failed", finish_reason="failed")
    assert stub.requests[0].headers["x-api-key"] == KEY  # it was really sent
    assert KEY not in json.dumps([e.data for e in events])
    assert KEY not in Message.objects.get(pk=reply["id"]).error
    assert KEY not in anthropic_process.log()


def test_model_with_streaming_off_is_fetched_in_one_request(client, stub):
    stub.queue(anthropic_whole("Everything in one go.", usage=(21, 6)))

    _, events, reply = ask(client, model="anthropic:claude-haiku-4-5")

    assert [e.name for e in events] == ["delta", "done"]
    assert stub.requests[0].json["stream"] is False
    assert stub.requests[0].json["model"] == "claude-haiku-4-5"
    assert_stored_reply(reply, "Everything in one go.", usage=(21, 6))


# --- the provider itself, against the stub ------------------------------------------------
@pytest.fixture
def provider(stub) -> AnthropicProvider:
    stub.reset()
    return AnthropicProvider(stub.url + "/v1", KEY, max_tokens=64)


@pytest.mark.parametrize(
    ("kind", "code", "status", "retryable"),
    [
        ("overloaded_error", "provider_unavailable", 529, True),
        ("rate_limit_error", "rate_limited", 429, True),
        ("invalid_request_error", "bad_request", 400, False),
        ("billing_error", "quota_exhausted", 402, False),  # as an HTTP 402: not tried again
        ("permission_error", "auth_error", 403, False),
        ("not_found_error", "provider_not_found", 404, False),
        ("api_error", "provider_unavailable", 500, True),
        ("conflict_error", "bad_request", 409, False),
        ("timeout_error", "provider_unavailable", 504, True),
        ("some_future_error", "provider_unavailable", 500, True),
    ],
)
def test_error_event_is_a_provider_error(provider, stub, kind, code, status, retryable):
    stub.queue(Script(steps=[anthropic_start(3), PING, anthropic_error_event(kind, "Nope")]))
    with pytest.raises(ProviderError) as raised:
        read_provider(provider, "claude-sonnet-4-5")
    error = raised.value
    assert (error.code, error.status, error.retryable) == (code, status, retryable)
    assert error.message.endswith(": Nope")
    assert stub.requests[0].path == "/v1/messages"  # a base URL ending in /v1 is accepted


def test_http_429_carries_retry_after(provider, stub):
    stub.queue(anthropic_http_error(429, "rate_limit_error", "Slow", {"retry-after": "30"}))
    with pytest.raises(ProviderError) as raised:
        read_provider(provider, "claude-sonnet-4-5")
    assert (raised.value.retryable, raised.value.retry_after) == (True, 30.0)


def test_stream_cut_before_message_delta_is_an_error(provider, stub):
    stub.queue(Script(steps=[anthropic_start(3), *anthropic_block(0, "text", ["Hi"])]))
    with pytest.raises(ProviderError) as raised:
        read_provider(provider, "claude-sonnet-4-5")
    assert raised.value.code == "connection_dropped"


def test_usage_counts_are_the_latest_never_a_sum(provider, stub):
    # Newer API versions repeat input_tokens in message_delta: still totals, not increments.
    end = anthropic_end(9)
    end[0] = end[0].replace(b'"output_tokens":9', b'"input_tokens":40,"output_tokens":9')
    stub.queue(Script(steps=[anthropic_start(40, 1), *anthropic_block(0, "text", ["ok"]), *end]))
    events = read_provider(provider, "claude-sonnet-4-5")
    assert events[0] == TextDelta("ok")
    finish = events[-1]
    assert type(finish) is Finish and finish.finish_reason == "stop"
    assert (finish.usage.prompt_tokens, finish.usage.completion_tokens) == (40, 9)


def test_cached_prompt_tokens_count_as_prompt(provider, stub):
    start = anthropic_start(4).replace(
        b'"cache_read_input_tokens":0', b'"cache_read_input_tokens":90'
    )
    stub.queue(Script(steps=[start, *anthropic_block(0, "text", ["ok"]), *anthropic_end(2)]))
    finish = read_provider(provider, "claude-sonnet-4-5")[-1]
    assert (finish.usage.prompt_tokens, finish.usage.completion_tokens) == (94, 2)


def test_sampling_options_from_the_openai_endpoint_reach_anthropic_in_its_names(
    anthropic_process, stub, alice
):
    stub.queue(anthropic_stream(["Fine."]), anthropic_stream(["Also fine."]))
    model = "anthropic:claude-sonnet-4-5"
    answer = complete_over_v1(anthropic_process.url, alice, model, top_p=None)
    assert answer["choices"][0]["message"]["content"] == "Fine."
    sent = stub.requests[-1].json
    assert sent["temperature"] == SAMPLING["temperature"] and "top_p" not in sent
    complete_over_v1(anthropic_process.url, alice, model, temperature=None)
    assert stub.requests[-1].json["top_p"] == SAMPLING["top_p"]
    assert sent["max_tokens"] == 55  # instead of ANTHROPIC_MAX_TOKENS
    assert sent["stop_sequences"] == ["END"] and "stop" not in sent


def test_openai_only_options_are_refused_for_anthropic(anthropic_process, stub, alice):
    openai_only_options_refused(anthropic_process.url, stub, alice, "anthropic:claude-sonnet-4-5")


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"temperature": 0.3, "top_p": 0.9}, "top_p: claude-sonnet-4-5 (Anthropic) takes temp"),
        ({"temperature": 1.5}, "temperature: claude-sonnet-4-5 (Anthropic) takes 0 to 1."),
    ],
    ids=["temperature-and-top-p", "temperature-over-1"],
)
def test_sampling_anthropic_does_not_take_is_a_400(anthropic_process, stub, alice, options, says):
    # Claude 4.5 and later answer both with a 400 of their own, after a message is stored.
    asked_before = len(stub.requests)
    response = post_over_v1(anthropic_process.url, alice, "anthropic:claude-sonnet-4-5", **options)
    assert response.status_code == 400, response.text
    assert says in response.json()["error"]["message"]
    assert len(stub.requests) == asked_before
