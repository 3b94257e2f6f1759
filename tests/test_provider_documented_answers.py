"""Answers the providers document, each read as what it means: a reply cut short by a full
context window or a provider short of capacity is no whole reply, an account out of credit
is no rate limit to wait out, and DashScope's error frames and codes say what they say."""

import pytest

from conversations.providers.anthropic import AnthropicProvider
from conversations.providers.base import ChatRequest, Finish, ProviderError
from conversations.providers.dashscope import DashScopeProvider
from conversations.providers.openai import OpenAICompatibleProvider
from conversations.providers.zhipu import ZhipuProvider
from tests.replies import read_provider
from tests.stub import Script, json_error, openai_stream
from tests.stub_protocols import (
    anthropic_stream,
    dashscope_error_frame,
    dashscope_frame,
    dashscope_http_error,
    dashscope_result,
    json_reply,
    zhipu_http_error,
)


@pytest.fixture
def openai(stub) -> OpenAICompatibleProvider:
    stub.reset()
    return OpenAICompatibleProvider(stub.url + "/v1", "sk-test")


@pytest.fixture
def dashscope(stub) -> DashScopeProvider:
    stub.reset()
    return DashScopeProvider(stub.url + "/api/v1", "sk-ds-test")


def test_anthropics_full_context_window_is_a_reply_cut_at_its_length(stub):
    # Sonnet 4.5 and later end a reply so by default: "treat the response as truncated".
    stub.reset()
    provider = AnthropicProvider(stub.url + "/v1", "sk-ant-test", max_tokens=64)
    stub.queue(anthropic_stream(["Cut"], stop_reason="model_context_window_exceeded"))
    finish = read_provider(provider, "claude-sonnet-4-5")[-1]
    assert type(finish) is Finish and finish.finish_reason == "length"


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_deepseek_short_of_capacity_fails_the_reply_as_worth_another_try(openai, stub, stream):
    script = openai_stream(["Half"], usage=(4, 2), finish_reason="insufficient_system_resource")
    if not stream:
        message = {"role": "assistant", "content": "Half"}
        choice = {"index": 0, "message": message, "finish_reason": "insufficient_system_resource"}
        usage = {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}
        script = json_reply({"object": "chat.completion", "choices": [choice], "usage": usage})
    stub.queue(script)
    with pytest.raises(ProviderError) as raised:
        read_provider(openai, "deepseek-chat", stream=stream)
    error = raised.value
    assert (error.code, error.retryable) == ("provider_unavailable", True)
    assert "ran short of capacity" in error.message
    assert error.usage.completion_tokens == 2  # what was generated is billed


@pytest.mark.parametrize(
    ("base_url", "sent_as"),
    [
        (
            "https://api.openai.com/v1",
            "max_completion_tokens",
        ),  # its reasoning models refuse max_tokens
        ("https://me.openai.azure.com/openai/v1", "max_completion_tokens"),
        ("http://127.0.0.1:11434/v1", "max_tokens"),  # Ollama, DeepSeek, Qwen: the older name only
    ],
)
@pytest.mark.parametrize(
    "given",
    [
        {"max_tokens": 9},
        {"max_completion_tokens": 9},
        {"max_tokens": 5, "max_completion_tokens": 9},
    ],
    ids=["older-name", "newer-name", "both"],  # both: the newer one counts, as everywhere
)
def test_a_token_limit_goes_under_the_one_name_each_server_takes(base_url, sent_as, given):
    provider = OpenAICompatibleProvider(base_url, "sk-test")
    request = ChatRequest(model="m", messages=[{"role": "user", "content": "Hi"}], options=given)
    body = provider.body(request)
    assert body[sent_as] == 9 == request.max_tokens
    assert {"max_tokens", "max_completion_tokens"} & body.keys() == {sent_as}


@pytest.mark.parametrize(
    ("make_provider", "script"),
    [
        (
            lambda url: OpenAICompatibleProvider(url + "/v1", "sk-test"),
            Script(
                status=429,
                headers={"Content-Type": "application/json"},
                steps=[
                    b'{"error": {"message": "You exceeded your current quota.",'
                    b' "type": "insufficient_quota", "code": "insufficient_quota"}}'
                ],
            ),
        ),
        (
            lambda url: ZhipuProvider(url + "/api/paas/v4", "id.secret"),
            zhipu_http_error(429, "1113", "Your account is in arrears."),
        ),
        (  # DeepSeek's empty account: Payment Required
            lambda url: OpenAICompatibleProvider(url + "/v1", "sk-test"),
            json_error(402, "Insufficient Balance"),
        ),
    ],
    ids=["openai", "zhipu", "deepseek"],
)
def test_an_account_out_of_credit_is_not_retried_as_a_rate_limit(stub, make_provider, script):
    stub.reset()
    stub.queue(script)
    with pytest.raises(ProviderError) as raised:
        read_provider(make_provider(stub.url))
    error = raised.value
    assert (error.code, error.retryable) == ("quota_exhausted", False)
    assert f"out of credit or quota (HTTP {error.status})" in error.message
    # A rate limit is still one, worth waiting out.
    stub.queue(json_error(429, "Slow down"))
    with pytest.raises(ProviderError) as raised:
        read_provider(make_provider(stub.url))
    assert (raised.value.code, raised.value.retryable) == ("rate_limited", True)


def test_dashscopes_error_sent_as_an_sse_frame_with_its_status_reads_as_its_message(
    dashscope, stub
):
    frame = dashscope_error_frame(1, "Throttling.RateQuota", "Requests rate limit exceeded.", 429)
    stub.queue(Script(status=429, headers={"Content-Type": "text/event-stream"}, steps=[frame]))
    with pytest.raises(ProviderError) as raised:
        read_provider(dashscope, "qwen-plus")
    assert raised.value.message == (
        "DashScope is rate limiting requests (HTTP 429): Requests rate limit exceeded."
    )


@pytest.mark.parametrize(
    "code", ["DataInspectionFailed", "InternalError.Algo.DataInspectionFailed"]
)
def test_dashscopes_content_inspection_mid_reply_is_a_content_filter(dashscope, stub, code):
    steps = [
        dashscope_frame(1, dashscope_result("Some", "null", 3, 1)),
        dashscope_error_frame(2, code, "Output data may contain inappropriate content."),
    ]
    stub.queue(Script(steps=steps))
    with pytest.raises(ProviderError) as raised:
        read_provider(dashscope, "qwen-plus")
    error = raised.value
    assert (error.code, error.finish_reason, error.retryable) == (
        "content_filter",
        "content_filter",
        False,
    )
    assert "content inspection stopped this reply" in error.message


def test_dashscopes_access_denied_kinds_are_a_refused_key(dashscope, stub):
    frame = dashscope_error_frame(1, "AccessDenied.Unpurchased", "Access to model denied.", 403)
    stub.queue(Script(steps=[frame]))
    with pytest.raises(ProviderError) as raised:
        read_provider(dashscope, "qwen-plus")
    assert (raised.value.code, raised.value.status) == ("auth_error", 403)


def test_qwen_compatible_modes_content_inspection_is_a_content_filter(openai, stub):
    error = {
        "code": "data_inspection_failed",
        "message": "Input data may contain inappropriate content.",
    }
    stub.queue(json_reply({"error": error}, 400))
    with pytest.raises(ProviderError) as raised:
        read_provider(openai, "qwen-plus")
    assert (raised.value.code, raised.value.retryable) == ("content_filter", False)


def test_dashscopes_content_inspection_of_the_request_is_a_content_filter(dashscope, stub):
    stub.queue(
        dashscope_http_error(
            400, "DataInspectionFailed", "Input data may contain inappropriate content."
        )
    )
    with pytest.raises(ProviderError) as raised:
        read_provider(dashscope, "qwen-plus")
    assert (raised.value.code, raised.value.status) == ("content_filter", 400)
    assert raised.value.message == (
        "DashScope's content inspection refused this request (DataInspectionFailed):"
        " Input data may contain inappropriate content."
    )


def test_a_model_or_path_the_provider_does_not_have_is_no_bad_request(openai, stub):
    # A 404 from the provider is this site's configuration (a model id, a base URL), not
    # something the person asking did wrong: /v1 answers it as the server's failure.
    stub.queue(json_error(404, "The model `gpt-9` does not exist."))
    with pytest.raises(ProviderError) as raised:
        read_provider(openai, "gpt-9")
    assert (raised.value.code, raised.value.retryable) == ("provider_not_found", False)
    assert raised.value.message.startswith("OpenAI-compatible has no such model or path (HTTP 404)")
