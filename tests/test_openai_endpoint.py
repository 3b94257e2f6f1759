"""The OpenAI-compatible endpoint, driven by OpenAI's own Python SDK: a completion in one
request, streamed or whole, stored as a conversation of the key's owner."""

import json

import httpx
import openai
import pytest
from django.conf import settings
from django.db import connection

from conversations.apikeys import revoke_key
from conversations.models import Conversation, Message, UserBudget
from conversations.providers.registry import available_models
from conversations.reply_job import load_job, transcript_job
from conversations.transcripts import Transcript, start_transcript
from tests.replies import HISTORY, MODEL, stored_reply
from tests.servers import SECRET_PROVIDER_KEY
from tests.stub import Script, json_error, openai_stream

OUT_OF_CREDIT = Script(
    status=429,
    headers={"Content-Type": "application/json"},
    steps=[
        b'{"error": {"message": "You exceeded your current quota.", "code": "insufficient_quota"}}'
    ],
)


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
    stub.queue(json_error(500, "The provider fell over"), json_error(500, "Still down"))
    stub.queue(json_error(500, "Down for good"))  # past chatsite's own retries
    with pytest.raises(openai.APIStatusError) as failure:
        sdk.chat.completions.create(model=MODEL, messages=HISTORY[1:2])
    assert (failure.value.status_code, failure.value.type) == (502, "server_error")
    assert "Down for good" in failure.value.message
    assert SECRET_PROVIDER_KEY not in failure.value.response.text

    stub.queue(json_error(400, "Bad request to the provider"))
    with pytest.raises(openai.APIError, match="Bad request to the provider"):
        list(sdk.chat.completions.create(model=MODEL, messages=HISTORY[1:2], stream=True))
    statuses = Message.objects.filter(role="assistant").values_list("status", flat=True)
    assert list(statuses) == ["failed", "failed"]


@pytest.mark.parametrize(
    ("script", "error", "status", "code"),
    [
        (
            json_error(400, "Prompt past the context window"),
            openai.BadRequestError,
            400,
            "bad_request",
        ),
        (OUT_OF_CREDIT, openai.RateLimitError, 429, "quota_exhausted"),
        (json_error(404, "No such model"), openai.InternalServerError, 502, "provider_not_found"),
    ],
    ids=["refused", "out-of-credit", "not-at-the-provider"],
)
def test_a_provider_answer_that_would_fail_again_is_not_sent_again_by_the_sdk(
    server, stub, alice_key, script, error, status, code
):
    # OpenAI's SDKs send a 429 or a 5xx again (twice, by default): a provider refusing the
    # request is the client's 400, as from OpenAI, and an account out of credit says not to.
    stub.queue(script)
    retrying = openai.OpenAI(base_url=f"{server.url}/v1", api_key=alice_key, max_retries=2)
    with retrying, pytest.raises(error) as failure:
        retrying.chat.completions.create(model=MODEL, messages=HISTORY[1:2])
    assert (failure.value.status_code, failure.value.code) == (status, code)
    assert len(stub.requests) == 1 and Conversation.objects.count() == 1


def test_a_client_that_reads_to_the_end_gets_a_complete_reply_without_a_stop_reason(sdk, stub):
    stub.queue(openai_stream(["All", " of it"]))
    chunks = list(sdk.chat.completions.create(model=MODEL, messages=HISTORY[1:2], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "All of it"
    reply = stored_reply()
    assert (reply.status, reply.error_code, reply.error) == ("complete", "", "")


def test_models_lists_the_configured_models(sdk):
    assert [model.id for model in sdk.models.list()] == ["openai:stub-model", "openai:stub-other"]


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


@pytest.mark.skipif(
    connection.vendor != "sqlite",
    reason="a limit of parameters per statement: SQLite's (PostgreSQL has none here)",
)
def test_a_history_longer_than_one_insert_can_hold_is_stored_whole(sdk, stub):
    # A transcript's messages are stored in one INSERT while they fit in the database's limit
    # of parameters per statement, and in as many as it takes past it.
    columns = len(Message._meta.concrete_fields)
    turns = connection.features.max_query_params // columns + 10
    history = []
    for turn in range(turns):
        history.append({"role": "user", "content": f"Question {turn}"})
        history.append({"role": "assistant", "content": f"Answer {turn}"})
    history.append({"role": "user", "content": "And now?"})
    if len(json.dumps(history)) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:  # a SQLite built so
        pytest.skip("this SQLite's limit takes a body past the upload limit to pass")
    stub.queue(openai_stream(["Done"]))
    answer = sdk.chat.completions.create(model=MODEL, messages=history)
    assert answer.choices[0].message.content == "Done"
    reply = stored_reply()
    assert reply.conversation.messages.count() == len(history) + 1
    assert len(stub.requests[-1].json["messages"]) == len(history)
