"""Regenerate: a new reply to the same user message; earlier replies stay as alternatives."""

from tests.replies import send_held_reply
from tests.stub import openai_stream


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
