"""What popular OpenAI clients send and expect, answered as OpenAI would: a model looked up
by id, a long document, messages of one role in a row, an assistant message without text."""

import httpx
import openai
import pytest

from conversations.models import Message, UserBudget
from tests.replies import MODEL, stored_reply
from tests.stub import openai_stream


def test_a_model_is_retrieved_by_its_id(sdk):
    model = sdk.models.retrieve(MODEL)  # GET /v1/models/{id}
    assert (model.id, model.object) == (MODEL, "model")
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.models.retrieve("openai:nope")
    assert missing.value.code == "model_not_found"


def test_a_long_document_is_taken_whole(sdk, stub):
    # Retrieval and coding tools send files and pages far longer than a typed message.
    document = "word " * 40_000
    stub.queue(openai_stream(["Read"]))
    sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": document}])
    assert stub.requests[-1].json["messages"][-1]["content"] == document
    assert stored_reply().parent.content == document


def test_messages_of_one_role_in_a_row_are_one_turn(sdk, stub):
    # A document, then a question; an earlier answer in two parts: no alternation rule here.
    messages = [
        {"role": "user", "content": "Here is a document."},
        {"role": "user", "content": "What is it about?"},
        {"role": "assistant", "content": "A cat."},
        {"role": "assistant", "content": [{"type": "text", "text": "And a hat."}]},
        {"role": "user", "content": "Thanks."},
    ]
    stub.queue(openai_stream(["Welcome"]))
    answer = sdk.chat.completions.create(model=MODEL, messages=messages)
    assert answer.choices[0].message.content == "Welcome"
    turns = [
        {"role": "user", "content": "Here is a document.\n\nWhat is it about?"},
        {"role": "assistant", "content": "A cat.\n\nAnd a hat."},
        {"role": "user", "content": "Thanks."},
    ]
    sent = stub.requests[-1].json["messages"]
    assert [m for m in sent if m["role"] != "system"] == turns
    stored = Message.objects.exclude(role="system").order_by("created_at")
    assert [(m.role, m.content) for m in stored][:3] == [(t["role"], t["content"]) for t in turns]


def test_an_assistant_message_without_text_is_taken(sdk, stub):
    # OpenAI's SDKs type an assistant message's content as optional (null).
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": None},
        {"role": "user", "content": "Are you there?"},
    ]
    stub.queue(openai_stream(["Yes"]))
    sdk.chat.completions.create(model=MODEL, messages=messages)
    # It says nothing, and Anthropic refuses an empty one: the user's two are one turn.
    sent = [m for m in stub.requests[-1].json["messages"] if m["role"] != "system"]
    assert sent == [{"role": "user", "content": "Hi\n\nAre you there?"}]
    assert stored_reply().parent.content == "Hi\n\nAre you there?"


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Hi"}],
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hel"}],
    ],
    ids=["starting-with-an-answer", "ending-with-one"],
)
def test_a_conversation_must_start_and_end_with_a_user_message(sdk, stub, messages):
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(model=MODEL, messages=messages)
    assert "must start and end with a user message" in refused.value.message
    assert not Message.objects.exists() and stub.requests == []


def test_a_user_message_without_text_is_left_out_too(sdk, stub):
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": None},
        {"role": "assistant", "content": "Still here."},
        {"role": "user", "content": "Bye"},
    ]
    stub.queue(openai_stream(["Bye"]))
    sdk.chat.completions.create(model=MODEL, messages=messages)
    sent = [m for m in stub.requests[-1].json["messages"] if m["role"] != "system"]
    assert [m["content"] for m in sent] == ["Hi", "Hello.\n\nStill here.", "Bye"]


def test_a_last_user_message_without_text_is_left_out_of_its_run(sdk, stub):
    # A document, then an empty message: the run of user messages still has its text.
    messages = [{"role": "user", "content": "A document."}, {"role": "user", "content": ""}]
    stub.queue(openai_stream(["Read"]))
    sdk.chat.completions.create(model=MODEL, messages=messages)
    assert stub.requests[-1].json["messages"][-1]["content"] == "A document."
    after_an_answer = [*messages[:1], {"role": "assistant", "content": "Hi"}, messages[1]]
    with pytest.raises(openai.BadRequestError, match="The last user message is empty"):
        sdk.chat.completions.create(model=MODEL, messages=after_an_answer)


def test_chatsites_own_daily_budget_spent_is_not_sent_again_by_the_sdks(
    server, stub, alice, alice_key
):
    UserBudget.objects.create(user=alice, tokens_per_day=10)
    stub.queue(openai_stream(["Spent"], usage=(6, 6)))
    headers = {"Authorization": f"Bearer {alice_key}"}
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}
    assert httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=headers).is_success
    refused = httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=headers)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "token_budget_exceeded"
    assert refused.headers["x-should-retry"] == "false"  # it would fail again until the reset
