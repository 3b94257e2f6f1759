"""Regenerate: a new reply to the same user message; earlier replies stay as alternatives. A
regeneration sent again with its client_id (Idempotency-Key) is answered with the first."""

import uuid

import pytest

from conversations.models import Message, UserBudget
from tests.replies import send_held_reply
from tests.stub import Gate, gated_stream, openai_stream


def test_regenerate_keeps_both_replies_as_alternatives(server, stub, alice_client):
    stub.queue(openai_stream(["First"]), openai_stream(["Second"]))
    conversation = alice_client.new_conversation()
    body = alice_client.send(conversation["id"], "Hi").json()
    first_id = body["assistant_message"]["id"]
    alice_client.wait_final(conversation["id"], first_id)

    again = alice_client.http.post(f"/api/messages/{first_id}/regenerate/")
    assert again.status_code == 201
    second_id = again.json()["assistant_message"]["id"]
    alice_client.wait_final(conversation["id"], second_id)

    messages = alice_client.conversation(conversation["id"])["messages"]
    replies = [m for m in messages if m["role"] == "assistant"]
    assert [r["content"] for r in replies] == ["First", "Second"]
    assert {r["parent"] for r in replies} == {body["user_message"]["id"]}
    # The regenerated request carries the conversation without the replaced reply.
    assert stub.requests[1].json["messages"] == [{"role": "user", "content": "Hi"}]


def test_regenerate_while_a_reply_is_generating_is_a_409(server, stub, alice_client):
    body = send_held_reply(alice_client, stub, ["Busy"])
    again = alice_client.http.post(f"/api/messages/{body['assistant_message']['id']}/regenerate/")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "reply_in_progress"
    conversation_id = body["user_message"]["conversation"]
    messages = alice_client.conversation(conversation_id)["messages"]
    assert [m["id"] for m in messages] == [
        body["user_message"]["id"],
        body["assistant_message"]["id"],
    ]
    assert len(stub.requests) == 1  # the running reply's own


def test_regenerate_by_the_user_message_answers_that_message_again(server, stub, alice_client):
    stub.queue(openai_stream(["First"]), openai_stream(["Second"]))
    conversation = alice_client.new_conversation()
    body = alice_client.send(conversation["id"], "Hi").json()
    alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])
    asked_id = body["user_message"]["id"]

    again = alice_client.http.post(f"/api/messages/{asked_id}/regenerate/")
    assert again.status_code == 201, again.text
    assert again.json()["user_message"]["id"] == asked_id
    reply = alice_client.wait_final(conversation["id"], again.json()["assistant_message"]["id"])
    assert (reply["parent"], reply["content"]) == (asked_id, "Second")


def test_a_message_with_nothing_to_answer_is_not_regenerated(server, stub, alice_client, sdk):
    stub.queue(openai_stream(["Yes"]))
    sdk.chat.completions.create(
        model="openai:stub-model",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    )
    [conversation] = alice_client.http.get("/api/conversations/").json()["results"]
    messages = alice_client.conversation(conversation["id"])["messages"]
    [system] = [m for m in messages if m["role"] == "system"]

    refused = alice_client.http.post(f"/api/messages/{system['id']}/regenerate/")
    assert refused.status_code == 400
    assert refused.json()["error"] == {
        "code": "not_regenerable", "message": "This message has nothing to answer.",
    }  # fmt: skip
    after = alice_client.conversation(conversation["id"])["messages"]
    assert [m["id"] for m in after] == [m["id"] for m in messages]
    assert len(stub.requests) == 1


def test_the_model_last_used_becomes_the_conversations_model(server, stub, alice_client):
    conversation = alice_client.new_conversation(model="openai:stub-model")
    body = alice_client.send(conversation["id"], "Hi", model="openai:stub-other").json()
    alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])
    assert alice_client.conversation(conversation["id"])["model"] == "openai:stub-other"
    assert stub.requests[0].json["model"] == "stub-other"


def answered(client, stub) -> tuple[str, dict]:
    """A conversation with "Hi" answered; its id and the message POST's body."""
    stub.queue(openai_stream(["First"]))
    conversation_id = client.new_conversation()["id"]
    body = client.send(conversation_id, "Hi").json()
    client.wait_final(conversation_id, body["assistant_message"]["id"])
    return conversation_id, body


def regenerate(client, message_id: str, key: str, how: str):
    if how == "header":
        return client.http.post(
            f"/api/messages/{message_id}/regenerate/", headers={"Idempotency-Key": key}
        )
    return client.http.post(f"/api/messages/{message_id}/regenerate/", json={"client_id": key})


@pytest.mark.parametrize("how", ["body", "header"])
def test_a_regeneration_sent_again_is_answered_with_the_first_reply(
    server, stub, alice_client, how
):
    conversation_id, body = answered(alice_client, stub)
    stub.queue(openai_stream(["Second"]))
    key = str(uuid.uuid4())
    first = regenerate(alice_client, body["assistant_message"]["id"], key, how)
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    reply_id = first.json()["assistant_message"]["id"]
    alice_client.wait_final(conversation_id, reply_id)

    # Its answer was lost: sent again, from the user message this time.
    again = regenerate(alice_client, body["user_message"]["id"], key, how)
    assert again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["assistant_message"]["id"] == reply_id
    assert again.json()["assistant_message"]["content"] == "Second"
    assert Message.objects.filter(role="assistant").count() == 2
    assert len(stub.requests) == 2


def test_a_regeneration_sent_again_is_given_back_over_a_budget_reached_since(
    server, stub, alice, alice_client
):
    conversation_id, body = answered(alice_client, stub)
    stub.queue(openai_stream(["Second"]))
    UserBudget.objects.create(user=alice, requests_per_minute=2)  # the message, this one
    key = str(uuid.uuid4())
    first = regenerate(alice_client, body["assistant_message"]["id"], key, "body")
    alice_client.wait_final(conversation_id, first.json()["assistant_message"]["id"])

    again = regenerate(alice_client, body["assistant_message"]["id"], key, "body")
    assert again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    refused = regenerate(alice_client, body["assistant_message"]["id"], str(uuid.uuid4()), "body")
    assert refused.status_code == 429, refused.text
    assert Message.objects.filter(role="assistant").count() == 2


def test_a_client_id_used_for_something_else_is_refused(server, stub, alice_client):
    conversation_id, body = answered(alice_client, stub)
    stub.queue(openai_stream(["Later"]), openai_stream(["Same words"]))
    message_key = str(uuid.uuid4())
    later = alice_client.send(conversation_id, "Later", client_id=message_key).json()
    alice_client.wait_final(conversation_id, later["assistant_message"]["id"])
    key = str(uuid.uuid4())
    regenerated = regenerate(alice_client, body["user_message"]["id"], key, "body")
    alice_client.wait_final(conversation_id, regenerated.json()["assistant_message"]["id"])
    stored = Message.objects.count()

    refusals = [
        regenerate(alice_client, body["user_message"]["id"], message_key, "body"),  # a message's
        regenerate(alice_client, later["user_message"]["id"], key, "body"),  # another message's
        alice_client.send(conversation_id, "Same words", client_id=key),  # a regeneration's
    ]
    for refused in refusals:
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "client_id_reused"
    assert Message.objects.count() == stored
    assert len(stub.requests) == 3


def test_a_regeneration_sent_again_while_its_reply_runs_is_answered_with_it(
    server, stub, alice_client
):
    conversation_id, body = answered(alice_client, stub)
    gate = Gate()
    stub.queue(gated_stream(["Sec"], gate, after=["ond"]))
    key = str(uuid.uuid4())
    first = regenerate(alice_client, body["assistant_message"]["id"], key, "body")
    gate.wait_reached()

    again = regenerate(alice_client, body["assistant_message"]["id"], key, "header")
    assert again.status_code == 201, again.text  # not "a reply is still being generated"
    assert again.headers["Idempotent-Replayed"] == "true"
    reply_id = first.json()["assistant_message"]["id"]
    assert again.json()["assistant_message"]["id"] == reply_id
    gate.open()
    assert alice_client.wait_final(conversation_id, reply_id)["content"] == "Second"
    assert len(stub.requests) == 2
