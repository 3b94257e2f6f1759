"""Zhipu GLM end to end: the v4 stream with usage in its last chunk, the `sensitive` and
`network_error` finish reasons, and the JWT an `id.secret` key is sent as."""

import json
import time

import jwt
import pytest

from conversations.models import Message
from conversations.providers.base import Finish, ProviderError, ReasoningDelta
from conversations.providers.zhipu import TOKEN_SECONDS, ZhipuProvider
from tests.client import text_of
from tests.replies import (
    ask,
    assert_stored_reply,
    complete_over_v1,
    openai_only_options_refused,
    post_over_v1,
    read_provider,
)
from tests.servers import serving
from tests.stub import Script
from tests.stub_protocols import zhipu_chunk, zhipu_http_error, zhipu_stream, zhipu_whole

PLAIN_KEY = "zhipu-plain-key-5f1e2d3c4b5a"
KEY_ID = "0f2c6d9e4b8a41d7a3c5e1f9b7d2a6c4"
KEY_SECRET = "Qm3xT8vLpR2sWq9Z"
JWT_KEY = f"{KEY_ID}.{KEY_SECRET}"
PATH = "/api/paas/v4/chat/completions"


SYSTEM_PROMPT = "Answer in English."
ENV = {
    "ZHIPUAI_BASE_URL": "{stub}/api/paas/v4",
    "ZHIPUAI_MODELS": "glm-4-flash,glm-4-air",
    "CHATSITE_NON_STREAMING_MODELS": "zhipu:glm-4-air",
    "CHATSITE_SYSTEM_PROMPT": SYSTEM_PROMPT,
    "OPENAI_API_KEY": "",
    "OPENAI_BASE_URL": "",
}


def zhipu_env(stub, key: str) -> dict[str, str]:
    return {name: value.format(stub=stub.url) for name, value in ENV.items()} | {
        "ZHIPUAI_API_KEY": key
    }


@pytest.fixture(scope="module")
def zhipu_process(django_db_setup, stub):
    """One server for this module, with a plain key (the JWT tests start their own)."""
    with serving(stub.url, **zhipu_env(stub, PLAIN_KEY)) as process:
        yield process


@pytest.fixture
def client(zhipu_process, client_for, alice):
    return client_for(alice, base_url=zhipu_process.url)


def bearer(request) -> str:
    scheme, _, token = request.headers["authorization"].partition(" ")
    assert scheme == "Bearer"
    return token


def test_zhipu_reply_streams_with_usage_from_the_last_chunk(client, stub):
    stub.queue(
        zhipu_stream(["Hello", " from", " GLM"], usage=(18, 5), reasoning=["Greet", " back"])
    )

    _, events, reply = ask(client, "Hi GLM")

    assert text_of(events) == "Hello from GLM"
    assert [e.data["content"] for e in events if e.name == "reasoning"] == ["Greet", " back"]
    request = stub.requests[0]
    assert request.path == PATH
    assert bearer(request) == PLAIN_KEY  # a plain key is sent as it is
    assert request.json == {
        "model": "glm-4-flash",
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": "Hi GLM"},
        ],
        "stream": True,
    }
    assert_stored_reply(reply, "Hello from GLM", usage=(18, 5))
    assert reply["reasoning"] == "Greet back"
    assert (reply["provider"], reply["model"]) == ("zhipu", "zhipu:glm-4-flash")


@pytest.mark.filterwarnings("ignore::jwt.InsecureKeyLengthWarning")  # Zhipu's 16-byte secrets
def test_id_secret_key_is_sent_as_a_signed_cached_jwt(start_server, stub, client_for, alice):
    server = start_server(**zhipu_env(stub, JWT_KEY))
    client = client_for(alice, base_url=server.url)
    stub.queue(zhipu_stream(["One"], usage=(3, 1)), zhipu_stream(["Two"], usage=(3, 1)))
    before_ms = int(time.time() * 1000)

    _, _, first = ask(client, "first")
    _, _, second = ask(client, "second")

    tokens = [bearer(request) for request in stub.requests]
    assert tokens[0] == tokens[1], "the token is reused until shortly before it expires"
    token = tokens[0]
    assert KEY_SECRET not in token and JWT_KEY not in token
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "sign_type": "SIGN"}
    # Signed with the secret half of the key (decode checks the signature).
    claims = jwt.decode(token, KEY_SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert set(claims) == {"api_key", "exp", "timestamp"}
    assert claims["api_key"] == KEY_ID
    # Both times are in milliseconds: the token was made during this test.
    assert before_ms <= claims["timestamp"] <= int(time.time() * 1000)
    assert claims["exp"] - claims["timestamp"] == TOKEN_SECONDS * 1000
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "another-secret", algorithms=["HS256"], options={"verify_exp": False})
    assert_stored_reply(first, "One", usage=(3, 1))
    assert_stored_reply(second, "Two", usage=(3, 1))


def test_neither_half_of_the_key_reaches_an_error(start_server, stub, client_for, alice):
    server = start_server(**zhipu_env(stub, JWT_KEY))
    client = client_for(alice, base_url=server.url)
    echo = f"令牌已过期或验证不正确 (key {JWT_KEY}, secret {KEY_SECRET})"
    stub.queue(zhipu_http_error(401, "1001", echo))

    _, events, reply = ask(client)

    assert reply["error_code"] == "auth_error"
    assert reply["error"] == (
        "Zhipu GLM rejected the API key (HTTP 401): "
        "令牌已过期或验证不正确 (key [redacted], secret [redacted])"
    )
    assert_stored_reply(reply, "", usage=None, status="failed", finish_reason="failed")
    exposure = json.dumps([e.data for e in events]) + Message.objects.get(pk=reply["id"]).error
    for secret in (JWT_KEY, KEY_SECRET):
        assert secret not in exposure
        assert secret not in server.log()


def test_sensitive_finish_fails_the_reply_with_a_clear_message(client, stub):
    stub.queue(zhipu_stream(["Here is", " how"], usage=(9, 2), finish_reason="sensitive"))

    _, events, reply = ask(client)

    assert events[-1].name == "error"
    assert events[-1].data["error"] == {
        "code": "content_filter",
        "message": "Zhipu GLM's safety review stopped this reply (finish reason: sensitive).",
    }
    assert reply["error_code"] == "content_filter"
    assert reply["error"] == events[-1].data["error"]["message"]
    # The provider counted (and billed) the tokens before its review stopped the reply.
    assert_stored_reply(
        reply, "Here is how", usage=(9, 2), status="failed", finish_reason="sensitive"
    )
    assert len(stub.requests) == 1, "a flagged reply is not retried"


def test_network_error_finish_fails_the_reply(client, stub):
    stub.queue(zhipu_stream(["Partly"], usage=(9, 1), finish_reason="network_error"))

    _, events, reply = ask(client)

    assert events[-1].name == "error"
    assert reply["error_code"] == "provider_unavailable"
    assert "network_error" in reply["error"]
    assert_stored_reply(
        reply, "Partly", usage=(9, 1), status="failed", finish_reason="network_error"
    )


def test_stream_without_usage_is_stored_with_estimated_counts(client, stub):
    stub.queue(zhipu_stream(["No usage", " came with this"], usage=None))
    _, _, reply = ask(client)
    assert_stored_reply(reply, "No usage came with this", usage=None)


def test_429_with_retry_after_is_retried_into_one_reply(client, stub):
    stub.queue(
        zhipu_http_error(429, "1302", "您当前使用该API的并发数过高", {"Retry-After": "0.5"}),
        zhipu_stream(["Done"], usage=(4, 1)),
    )

    conversation, _, reply = ask(client)

    attempts = reply["metadata"]["attempts"]
    assert [(a["outcome"], a.get("status")) for a in attempts] == [
        ("rate_limited", 429),
        ("ok", None),
    ]
    assert attempts[0]["retry_in_seconds"] == 0.5
    assert_stored_reply(reply, "Done", usage=(4, 1))
    assert Message.objects.filter(conversation_id=conversation["id"], role="assistant").count() == 1


def test_model_with_streaming_off_is_fetched_in_one_request(client, stub):
    stub.queue(zhipu_whole("All of it at once.", usage=(12, 5)))

    _, events, reply = ask(client, model="zhipu:glm-4-air")

    assert [e.name for e in events] == ["delta", "done"]
    assert stub.requests[0].json["stream"] is False
    assert "stream_options" not in stub.requests[0].json
    assert_stored_reply(reply, "All of it at once.", usage=(12, 5))


# --- the provider itself, against the stub ------------------------------------------------
@pytest.fixture
def provider(stub) -> ZhipuProvider:
    stub.reset()
    return ZhipuProvider(f"{stub.url}/api/paas/v4", PLAIN_KEY)


def test_error_chunk_is_a_provider_error(provider, stub):
    error = {"error": {"code": "1214", "message": "messages 参数非法。请检查文档。"}}
    stub.queue(Script(steps=[zhipu_chunk("Hm"), f"data: {json.dumps(error)}\n\n".encode()]))
    with pytest.raises(ProviderError) as raised:
        read_provider(provider, "glm-4-flash")
    assert raised.value.message == "Zhipu GLM reported an error: messages 参数非法。请检查文档。"


@pytest.mark.parametrize(
    ("finish_reason", "code", "retryable"),
    [("sensitive", "content_filter", False), ("network_error", "provider_unavailable", True)],
)
def test_failing_finish_reasons_are_provider_errors(provider, stub, finish_reason, code, retryable):
    stub.queue(zhipu_stream(["x"], finish_reason=finish_reason))
    with pytest.raises(ProviderError) as raised:
        read_provider(provider, "glm-4-flash")
    assert (raised.value.code, raised.value.retryable) == (code, retryable)
    assert finish_reason in raised.value.message


def test_sensitive_finish_fails_a_reply_fetched_whole_too(provider, stub):
    stub.queue(zhipu_whole("blocked", finish_reason="sensitive"))
    with pytest.raises(ProviderError) as raised:
        read_provider(provider, "glm-4-flash", stream=False)
    assert raised.value.code == "content_filter"


def test_http_429_carries_retry_after(provider, stub):
    stub.queue(zhipu_http_error(429, "1302", "Too many", {"Retry-After": "3"}))
    with pytest.raises(ProviderError) as raised:
        read_provider(provider, "glm-4-flash")
    assert (raised.value.retryable, raised.value.retry_after) == (True, 3.0)


def test_reasoning_then_usage_from_last_chunk(provider, stub):
    stub.queue(zhipu_stream(["ok"], usage=(7, 3), reasoning=["think"]))
    events = read_provider(provider, "glm-4-flash")
    assert events[0] == ReasoningDelta("think")
    assert events[-1] == Finish("stop", events[-1].usage)
    assert (events[-1].usage.prompt_tokens, events[-1].usage.completion_tokens) == (7, 3)


def test_an_error_echoing_the_signed_token_shows_no_token(stub):
    stub.reset()
    provider = ZhipuProvider(f"{stub.url}/api/paas/v4", JWT_KEY)
    token = provider.token.current()  # cached: the request below sends this same token
    stub.queue(zhipu_http_error(401, "1001", f"令牌已过期 Bearer {token}"))
    with pytest.raises(ProviderError) as raised:
        read_provider(provider, "glm-4-flash")
    assert bearer(stub.requests[0]) == token
    assert token not in raised.value.message
    assert "[redacted]" in raised.value.message


def test_sampling_options_from_the_openai_endpoint_reach_zhipu_with_its_max_tokens(
    zhipu_process, stub, alice
):
    stub.queue(zhipu_stream(["Fine."]))
    body = {"max_tokens": None, "max_completion_tokens": 77}  # OpenAI's newer name
    answer = complete_over_v1(zhipu_process.url, alice, "zhipu:glm-4-flash", **body)
    assert answer["choices"][0]["message"]["content"] == "Fine."
    sent = stub.requests[-1].json
    assert (sent["temperature"], sent["top_p"], sent["stop"]) == (0.3, 0.9, ["END"])
    assert sent["max_tokens"] == 77 and "max_completion_tokens" not in sent


def test_openai_only_options_are_refused_for_zhipu(zhipu_process, stub, alice):
    openai_only_options_refused(zhipu_process.url, stub, alice, "zhipu:glm-4-flash")


def test_a_temperature_over_zhipus_range_is_a_400(zhipu_process, stub, alice):
    asked_before = len(stub.requests)
    response = post_over_v1(zhipu_process.url, alice, "zhipu:glm-4-flash", temperature=1.5)
    assert response.status_code == 400, response.text
    says = "temperature: glm-4-flash (Zhipu GLM) takes 0 to 1."
    assert says in response.json()["error"]["message"]
    assert len(stub.requests) == asked_before
