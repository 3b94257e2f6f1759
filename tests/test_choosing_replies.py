"""Choosing among a message's replies: the conversation goes on from the one its owner chose
(the chat page's arrows), until a newer reply is made; exports say which one that is."""

import json

import pytest

from conversations.models import Message
from tests.stub import json_error, openai_stream


def answered_three_times(client, stub, third=None) -> tuple[str, dict, list[dict]]:
    """A conversation whose "Hi" has three replies: "First", "Second" and `third` (default
    "Third"); its id, the user message and the replies, oldest first."""
    stub.queue(openai_stream(["First"]), openai_stream(["Second"]))
    stub.queue(third or openai_stream(["Third"]))
    conversation_id = client.new_conversation()["id"]
    body = client.send(conversation_id, "Hi").json()
    reply = client.wait_final(conversation_id, body["assistant_message"]["id"])
    replies = [reply]
    for _ in range(2):
        again = client.http.post(f"/api/messages/{reply['id']}/regenerate/")
        assert again.status_code == 201, again.text
        replies.append(client.wait_final(conversation_id, again.json()["assistant_message"]["id"]))
    return conversation_id, body["user_message"], replies


def asked_after(client, stub, conversation_id: str) -> list[dict]:
    """The messages the model is sent for the next message ("And?")."""
    stub.queue(openai_stream(["Next"]))
    body = client.send(conversation_id, "And?").json()
    client.wait_final(conversation_id, body["assistant_message"]["id"])
    return stub.requests[-1].json["messages"]


def choose(client, reply: dict) -> dict:
    response = client.http.post(f"/api/messages/{reply['id']}/choose/")
    assert response.status_code == 200, response.text
    return response.json()


def test_the_next_message_is_asked_with_the_reply_its_owner_chose(server, stub, alice_client):
    conversation_id, _, replies = answered_three_times(alice_client, stub)
    assert [r["chosen_at"] for r in replies] == [None, None, None]

    chosen = choose(alice_client, replies[0])
    assert (chosen["id"], chosen["content"]) == (replies[0]["id"], "First")
    assert chosen["chosen_at"] is not None
    stored = alice_client.message(conversation_id, replies[0]["id"])
    assert stored["chosen_at"] == chosen["chosen_at"]

    assert asked_after(alice_client, stub, conversation_id) == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "First"},
        {"role": "user", "content": "And?"},
    ]


def test_until_one_is_chosen_the_newest_reply_is_the_one_carried_on(server, stub, alice_client):
    conversation_id, _, _ = answered_three_times(alice_client, stub)
    assert asked_after(alice_client, stub, conversation_id)[1]["content"] == "Third"


def test_a_reply_made_after_a_choice_is_the_one_carried_on(server, stub, alice_client):
    conversation_id, _, replies = answered_three_times(alice_client, stub)
    choose(alice_client, replies[0])
    stub.queue(openai_stream(["Fourth"]))
    again = alice_client.http.post(f"/api/messages/{replies[0]['id']}/regenerate/").json()
    alice_client.wait_final(conversation_id, again["assistant_message"]["id"])
    assert asked_after(alice_client, stub, conversation_id)[1]["content"] == "Fourth"


def test_the_latest_choice_wins(server, stub, alice_client):
    conversation_id, _, replies = answered_three_times(alice_client, stub)
    choose(alice_client, replies[0])
    choose(alice_client, replies[1])
    assert asked_after(alice_client, stub, conversation_id)[1]["content"] == "Second"


def test_a_chosen_reply_without_text_leaves_the_latest_chosen_with_text(server, stub, alice_client):
    failure = json_error(400, "Bad request")
    conversation_id, _, replies = answered_three_times(alice_client, stub, third=failure)
    assert (replies[2]["status"], replies[2]["content"]) == ("failed", "")
    choose(alice_client, replies[1])
    choose(alice_client, replies[0])
    choose(alice_client, replies[2])  # shown, but nothing to send back to the model
    assert asked_after(alice_client, stub, conversation_id)[1]["content"] == "First"


def test_only_a_reply_can_be_chosen(server, stub, alice_client):
    conversation_id, asked, _ = answered_three_times(alice_client, stub)
    refused = alice_client.http.post(f"/api/messages/{asked['id']}/choose/")
    assert refused.status_code == 400
    assert refused.json()["error"] == {
        "code": "not_a_reply", "message": "Only a reply can be chosen.",
    }  # fmt: skip
    assert alice_client.message(conversation_id, asked["id"])["chosen_at"] is None


def test_nobody_else_can_choose_alices_reply(server, stub, alice_client, charlie_client):
    conversation_id, _, replies = answered_three_times(alice_client, stub)
    refused = charlie_client.http.post(f"/api/messages/{replies[0]['id']}/choose/")
    assert refused.status_code == 404
    assert alice_client.message(conversation_id, replies[0]["id"])["chosen_at"] is None


@pytest.fixture
def chosen_second(server, stub, alice_client) -> str:
    """A conversation whose "Hi" has three answers, the second one chosen."""
    conversation_id, _, replies = answered_three_times(alice_client, stub)
    choose(alice_client, replies[1])
    return conversation_id


def exported(client, conversation_id: str, format: str) -> str:
    response = client.http.get(f"/api/conversations/{conversation_id}/export/?format={format}")
    assert response.status_code == 200, response.text
    return response.text


def test_the_markdown_export_marks_the_chosen_reply(alice_client, chosen_second):
    text = exported(alice_client, chosen_second, "markdown")
    titles = [line for line in text.splitlines() if line.startswith("## Assistant")]
    assert titles == [
        "## Assistant, reply 1 of 3",
        "## Assistant, reply 2 of 3 (chosen)",
        "## Assistant, reply 3 of 3",
    ]


def test_the_fine_tuning_export_has_the_chosen_reply(alice_client, chosen_second):
    [line] = exported(alice_client, chosen_second, "jsonl").splitlines()
    assert json.loads(line)["messages"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Second"},
    ]


def test_the_json_export_says_when_a_reply_was_chosen(alice_client, chosen_second):
    messages = json.loads(exported(alice_client, chosen_second, "json"))["messages"]
    chosen = Message.objects.get(content="Second").chosen_at
    assert [m.get("chosen_at") for m in messages] == [None, None, chosen.isoformat(), None]
