"""Several providers at once: every configured provider's models are offered under unambiguous
ids, each reply goes to its own protocol, and all are stored alike."""

import json
import re

import pytest

from tests.client import text_of
from tests.replies import ask, assert_stored_reply
from tests.servers import serving
from tests.stub import openai_stream
from tests.stub_protocols import anthropic_stream, dashscope_stream, zhipu_stream

DASHSCOPE_KEY = "sk-ds-several-7c1a"
ANTHROPIC_KEY = "sk-ant-several-9b2e"


@pytest.fixture(scope="module")
def two_providers_process(django_db_setup, stub):
    """DashScope and Anthropic configured, the OpenAI-compatible provider off."""
    with serving(
        stub.url,
        DASHSCOPE_API_KEY=DASHSCOPE_KEY,
        DASHSCOPE_BASE_URL=stub.url,
        DASHSCOPE_MODELS="qwen-plus,qwen-max",
        ANTHROPIC_API_KEY=ANTHROPIC_KEY,
        ANTHROPIC_BASE_URL=stub.url,
        ANTHROPIC_MODELS="claude-sonnet-4-5",
    ) as process:
        yield process


@pytest.fixture
def two_providers(two_providers_process, stub, transactional_db):
    stub.reset()
    return two_providers_process


TWO_PROVIDER_MODELS = ["dashscope:qwen-plus", "dashscope:qwen-max", "anthropic:claude-sonnet-4-5"]


def test_model_list_and_chat_page_offer_every_configured_provider(two_providers, client_for, alice):
    client = client_for(alice, base_url=two_providers.url)

    models = client.http.get("/api/models/").json()["models"]

    assert [m["id"] for m in models] == TWO_PROVIDER_MODELS
    assert [m["provider"] for m in models] == ["dashscope", "dashscope", "anthropic"]
    assert [m["is_default"] for m in models] == [True, False, False]
    assert models[2]["label"] == "claude-sonnet-4-5 (Anthropic)"
    conversation = client.new_conversation()
    page = client.http.get(f"/c/{conversation['id']}/")
    assert page.status_code == 200
    picker = re.search(
        r'<script id="models-data" type="application/json">(.*?)</script>', page.text
    )
    assert [m["id"] for m in json.loads(picker.group(1))] == TWO_PROVIDER_MODELS
    for key in (DASHSCOPE_KEY, ANTHROPIC_KEY):
        assert key not in page.text


def test_each_reply_speaks_its_own_providers_protocol(two_providers, stub, client_for, alice):
    client = client_for(alice, base_url=two_providers.url)
    stub.queue(dashscope_stream(["通义", "千问"], usage=(10, 4)))
    stub.queue(anthropic_stream(["Claude", " too"], usage=(30, 3)))

    _, qwen_events, qwen = ask(client, "Who are you?", model="dashscope:qwen-max")
    _, claude_events, claude = ask(client, "And you?", model="anthropic:claude-sonnet-4-5")

    assert [r.path for r in stub.requests] == [
        "/api/v1/services/aigc/text-generation/generation",
        "/v1/messages",
    ]
    assert stub.requests[0].json["model"] == "qwen-max"
    assert stub.requests[0].headers["authorization"] == f"Bearer {DASHSCOPE_KEY}"
    assert stub.requests[1].json["model"] == "claude-sonnet-4-5"
    assert stub.requests[1].headers["x-api-key"] == ANTHROPIC_KEY
    assert (text_of(qwen_events), text_of(claude_events)) == ("通义千问", "Claude too")
    assert_stored_reply(qwen, "通义千问", usage=(10, 4))
    assert_stored_reply(claude, "Claude too", usage=(30, 3))
    assert (qwen["model"], claude["model"]) == ("dashscope:qwen-max", "anthropic:claude-sonnet-4-5")


@pytest.mark.parametrize(
    "model",
    [
        "zhipu:glm-4-flash",
        "openai:stub-model",
        "qwen-plus",
        "dashscope:qwen-turbo",
        "demo:chatsite-demo",
    ],
)
def test_unknown_or_unconfigured_model_is_a_400_listing_the_valid_ones(
    two_providers, stub, client_for, alice, model
):
    client = client_for(alice, base_url=two_providers.url)
    conversation = client.new_conversation()

    for response in (
        client.send(conversation["id"], "Hi", model=model),
        client.http.post("/api/conversations/", json={"model": model}),
    ):
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "invalid"
        assert f"Unknown model '{model}'" in error["message"]
        for valid in TWO_PROVIDER_MODELS:
            assert valid in error["message"]
    assert client.conversation(conversation["id"])["messages"] == []  # nothing half-written
    assert stub.requests == []


def test_all_four_providers_together(start_server, stub, client_for, alice):
    server = start_server(
        OPENAI_BASE_URL=f"{stub.url}/v1",
        OPENAI_MODELS="stub-model",
        DASHSCOPE_API_KEY=DASHSCOPE_KEY,
        DASHSCOPE_BASE_URL=stub.url,
        ZHIPUAI_API_KEY="zhipu-several",
        ZHIPUAI_BASE_URL=f"{stub.url}/api/paas/v4",
        ANTHROPIC_API_KEY=ANTHROPIC_KEY,
        ANTHROPIC_BASE_URL=stub.url,
    )
    client = client_for(alice, base_url=server.url)
    ids = [m["id"] for m in client.http.get("/api/models/").json()["models"]]
    assert ids == [
        "openai:stub-model",
        "dashscope:qwen-plus",
        "zhipu:glm-4-flash",
        "anthropic:claude-sonnet-4-5",
    ]
    stub.queue(
        openai_stream(["same"], usage=(5, 1)),
        dashscope_stream(["same"], usage=(5, 1)),
        zhipu_stream(["same"], usage=(5, 1)),
        anthropic_stream(["same"], usage=(5, 1)),
    )
    replies = [ask(client, "Hi", model=model_id)[2] for model_id in ids]
    for reply in replies:
        assert_stored_reply(reply, "same", usage=(5, 1))
    assert [r.path for r in stub.requests] == [
        "/v1/chat/completions",
        "/api/v1/services/aigc/text-generation/generation",
        "/api/paas/v4/chat/completions",
        "/v1/messages",
    ]
    # Each reply's response is read to its end, so one kept connection served all four.
    assert [r.connection for r in stub.requests] == [stub.requests[0].connection] * 4
