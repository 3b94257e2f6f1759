"""DashScope's native protocol, end to end: the stub speaks DashScope's own SSE frames to a
real chatsite server, and every reply is stored in the same shape as any other provider's."""

import json

import pytest

from conversations.models import Message
from conversations.providers.base import Finish, ProviderError, TextDelta
from conversations.providers.dashscope import GENERATION_PATH, DashScopeProvider
from tests.client import text_of
from tests.replies import (
    SAMPLING,
    ask,
    assert_stored_reply,
    complete_over_v1,
    openai_only_options_refused,
    read_provider,
)
from tests.servers import serving
from tests.stub import Script
from tests.stub_protocols import (
    dashscope_error_frame,
    dashscope_frame,
    dashscope_http_error,
    dashscope_result,
    dashscope_stream,
    dashscope_whole,
)

KEY = "sk-ds-secret-0123456789abcdef"


SYSTEM_PROMPT = "Be brief."


@pytest.fixture(scope="module")
def dashscope_process(django_db_setup, stub):
    """One server for this module: DashScope only, with a model of each kind."""
    with serving(
        stub.url,
        DASHSCOPE_API_KEY=KEY,
        DASHSCOPE_BASE_URL=stub.url,
        DASHSCOPE_MODELS="qwen-plus,qwen-max,qwen-long",
        DASHSCOPE_NON_INCREMENTAL_MODELS="qwen-max",
        CHATSITE_NON_STREAMING_MODELS="dashscope:qwen-long",
        CHATSITE_SYSTEM_PROMPT=SYSTEM_PROMPT,
    ) as process:
        yield process


@pytest.fixture
def client(dashscope_process, client_for, alice):
    return client_for(alice, base_url=dashscope_process.url)


def test_dashscope_reply_streams_with_reasoning_and_cumulative_usage(client, stub):
    stub.queue(
        dashscope_stream(["你好", ", ", "world"], usage=(31, 12), reasoning=["The user", " greets"])
    )

    _, events, reply = ask(client, "Say hello")

    assert text_of(events) == "你好, world"
    assert [e.data["content"] for e in events if e.name == "reasoning"] == ["The user", " greets"]
    assert events[-1].name == "done"
    request = stub.requests[0]
    assert request.path == GENERATION_PATH
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["x-dashscope-sse"] == "enable"
    assert request.json == {
        "model": "qwen-plus",
        "input": {
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": "Say hello"},
            ]
        },
        "parameters": {"result_format": "message", "incremental_output": True},
    }
    # Every frame carried usage so far; the last one's counts are stored, never a sum.
    assert_stored_reply(reply, "你好, world", usage=(31, 12))
    assert reply["reasoning"] == "The user greets"
    assert reply["reasoning_tokens"] == 2
    assert (reply["provider"], reply["model"]) == ("dashscope", "dashscope:qwen-plus")


def test_model_with_incremental_output_off_yields_clean_deltas(client, stub):
    pieces = ["Once", " upon", " a", " time."]
    stub.queue(dashscope_stream(pieces, usage=(8, 5), cumulative=True, reasoning=["Hm", "m."]))

    _, events, reply = ask(client, "A story", model="dashscope:qwen-max")

    assert stub.requests[0].json["parameters"]["incremental_output"] is False
    # Each frame repeated the whole text so far; only the new part of each was passed on.
    assert [e.data["content"] for e in events if e.name == "delta"] == pieces
    assert [e.data["content"] for e in events if e.name == "reasoning"] == ["Hm", "m."]
    assert_stored_reply(reply, "Once upon a time.", usage=(8, 5))
    assert reply["reasoning"] == "Hmm."


def test_error_frame_fails_the_reply_and_keeps_the_streamed_text(client, stub):
    first = dashscope_frame(1, dashscope_result("Partial", "null", 10, 1))
    error = dashscope_error_frame(
        2, "DataInspectionFailed", "Output data may contain inappropriate content."
    )
    stub.queue(Script(steps=[first, error]))

    _, events, reply = ask(client)

    assert events[-1].name == "error"
    assert events[-1].data["error"]["code"] == "content_filter"  # its content inspection
    assert reply["error"] == (
        "DashScope's content inspection stopped this reply (DataInspectionFailed):"
        " Output data may contain inappropriate content."
    )
    assert_stored_reply(
        reply, "Partial", usage=None, status="failed", finish_reason="content_filter"
    )
    assert len(stub.requests) == 1


def test_429_with_retry_after_is_retried_into_one_reply(client, stub):
    stub.queue(
        dashscope_http_error(
            429, "Throttling.RateQuota", "Requests rate limit exceeded.", {"Retry-After": "0.5"}
        ),
        dashscope_stream(["Fine"], usage=(3, 1)),
    )

    conversation, _, reply = ask(client)

    attempts = reply["metadata"]["attempts"]
    assert [(a["outcome"], a.get("status")) for a in attempts] == [
        ("rate_limited", 429),
        ("ok", None),
    ]
    assert attempts[0]["retry_in_seconds"] == 0.5  # the provider's hint, not the 0.01 s backoff
    assert_stored_reply(reply, "Fine", usage=(3, 1))
    assert Message.objects.filter(conversation_id=conversation["id"], role="assistant").count() == 1


def test_rejected_key_is_redacted_from_the_error(client, stub, dashscope_process):
    stub.queue(dashscope_http_error(401, "InvalidApiKey", f"Invalid API-key provided: {KEY}"))

    _, events, reply = ask(client)

    assert reply["error_code"] == "auth_error"
    assert reply["error"] == (
        "DashScope rejected the API key (HTTP 401): Invalid API-key provided: [redacted]"
    )
    assert_stored_reply(reply, "", usage=None, status="failed", finish_reason="failed")
    assert stub.requests[0].headers["authorization"] == f"Bearer {KEY}"  # it was really sent
    assert KEY not in json.dumps([e.data for e in events])
    assert KEY not in Message.objects.get(pk=reply["id"]).error
    assert KEY not in dashscope_process.log()


def test_model_with_streaming_off_is_fetched_in_one_request(client, stub):
    stub.queue(dashscope_whole("The whole reply at once.", usage=(14, 6)))

    _, events, reply = ask(client, model="dashscope:qwen-long")

    assert [e.name for e in events] == ["delta", "done"]
    assert text_of(events) == "The whole reply at once."
    request = stub.requests[0]
    assert "x-dashscope-sse" not in request.headers
    assert request.json["parameters"] == {"result_format": "message"}
    assert_stored_reply(reply, "The whole reply at once.", usage=(14, 6))


# --- the provider itself, against the stub ------------------------------------------------
@pytest.fixture
def provider(stub) -> DashScopeProvider:
    stub.reset()
    return DashScopeProvider(stub.url + "/api/v1", KEY)


def test_error_frame_is_a_provider_error(provider, stub):
    stub.queue(
        Script(steps=[dashscope_error_frame(1, "InvalidParameter", "Range of input length")])
    )
    with pytest.raises(ProviderError) as raised:
        read_provider(provider, "qwen-plus")
    error = raised.value
    assert (error.code, error.status, error.retryable) == ("bad_request", 400, False)
    assert error.message == "DashScope refused the request (HTTP 400): Range of input length"
    assert stub.requests[0].path == GENERATION_PATH  # the SDK-style base URL was accepted


def test_throttling_error_frame_is_retryable(provider, stub):
    frame = dashscope_error_frame(1, "Throttling", "Too many requests in route.", status=429)
    stub.queue(Script(steps=[frame]))
    with pytest.raises(ProviderError) as raised:
        read_provider(provider, "qwen-plus")
    assert (raised.value.code, raised.value.retryable) == ("rate_limited", True)


def test_http_429_carries_retry_after(provider, stub):
    stub.queue(dashscope_http_error(429, "Throttling", "Slow down", {"Retry-After": "7"}))
    with pytest.raises(ProviderError) as raised:
        read_provider(provider, "qwen-plus")
    assert (raised.value.retryable, raised.value.retry_after) == (True, 7.0)


def test_stream_cut_before_the_finishing_frame_is_an_error(provider, stub):
    stub.queue(Script(steps=[dashscope_frame(1, dashscope_result("Half", "null", 3, 1))]))
    with pytest.raises(ProviderError) as raised:
        read_provider(provider, "qwen-plus")
    assert raised.value.code == "connection_dropped"


def test_length_finish_keeps_its_reason_and_last_usage(provider, stub):
    stub.queue(dashscope_stream(["a", "b", "c"], usage=(5, 4), finish_reason="length"))
    events = read_provider(provider, "qwen-plus")
    assert [e.text for e in events if type(e) is TextDelta] == ["a", "b", "c"]
    finish = events[-1]
    assert type(finish) is Finish
    assert finish.finish_reason == "length"
    assert (finish.usage.prompt_tokens, finish.usage.completion_tokens) == (5, 4)


def test_sampling_options_from_the_openai_endpoint_reach_dashscope_as_parameters(
    dashscope_process, stub, alice
):
    stub.queue(dashscope_stream(["Fine."]))
    answer = complete_over_v1(dashscope_process.url, alice, "dashscope:qwen-plus")
    assert answer["choices"][0]["message"]["content"] == "Fine."
    parameters = stub.requests[-1].json["parameters"]
    assert {name: parameters[name] for name in SAMPLING} == SAMPLING


def test_openai_only_options_are_refused_for_dashscope(dashscope_process, stub, alice):
    openai_only_options_refused(dashscope_process.url, stub, alice, "dashscope:qwen-plus")
