"""A conversation's system prompt: set by its owner, told to the model first, kept in exports."""

import json

import httpx
from django.conf import settings

from conversations.apikeys import create_key
from conversations.models import Conversation, Message
from tests.conftest import wait_until_replies_settle
from tests.stub import openai_stream

FRENCH = "Answer in French."


def ask(client, stub, conversation_id: str, text: str) -> list[dict]:
    """Send a message, wait for its reply; the messages the provider was asked."""
    stub.queue(openai_stream(["D'accord"]))
    body = client.send(conversation_id, text).json()
    client.wait_final(conversation_id, body["assistant_message"]["id"])
    return stub.requests[-1].json["messages"]


def v1_completion(server, stub, owner, turns: list[tuple[str, str]]) -> httpx.Response:
    """A /v1 request of `owner` with these (role, content) messages, answered "Hello"."""
    _, secret = create_key(owner)
    stub.queue(openai_stream(["Hello"]))
    messages = [{"role": role, "content": content} for role, content in turns]
    answer = httpx.post(
        f"{server.url}/v1/chat/completions",
        json={"model": "openai:stub-model", "messages": messages},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert answer.status_code == 200, answer.text
    return answer


def test_the_system_prompt_is_what_the_model_is_told_first(server, stub, alice_client):
    conversation = alice_client.new_conversation(system_prompt=FRENCH)
    assert conversation["system_prompt"] == FRENCH
    assert ask(alice_client, stub, conversation["id"], "Hi") == [
        {"role": "system", "content": FRENCH},
        {"role": "user", "content": "Hi"},
    ]

    # Changed, it holds for the next replies; emptied, the site's default (none here) holds.
    url = f"/api/conversations/{conversation['id']}/"
    changed = alice_client.http.patch(url, json={"system_prompt": "Answer in German."})
    assert changed.status_code == 200 and changed.json()["title"] == "Hi"
    asked = ask(alice_client, stub, conversation["id"], "And now?")
    assert asked[0] == {"role": "system", "content": "Answer in German."}
    assert alice_client.http.patch(url, json={"system_prompt": ""}).status_code == 200
    asked = ask(alice_client, stub, conversation["id"], "Plainly?")
    assert [m["role"] for m in asked] == ["user", "assistant"] * 2 + ["user"]


def test_the_owners_system_prompt_replaces_one_a_v1_request_brought(
    server, stub, alice, client_for
):
    answer = v1_completion(server, stub, alice, [("system", "Be terse."), ("user", "Hi")])
    conversation_id = answer.headers["X-Chatsite-Conversation"]
    alice_client = client_for(alice)
    assert ask(alice_client, stub, conversation_id, "More?")[0]["content"] == "Be terse."

    url = f"/api/conversations/{conversation_id}/"
    assert alice_client.http.patch(url, json={"system_prompt": FRENCH}).status_code == 200
    asked = ask(alice_client, stub, conversation_id, "Again?")
    assert [m for m in asked if m["role"] == "system"] == [{"role": "system", "content": FRENCH}]


def test_bad_system_prompts_get_a_clear_400_and_change_nothing(server, alice_client):
    conversation = alice_client.new_conversation(system_prompt=FRENCH)
    url = f"/api/conversations/{conversation['id']}/"
    too_long = "x" * (settings.CHATSITE_MAX_MESSAGE_CHARS + 1)
    cases = [
        ({}, "Give a title or a system_prompt to change."),
        ({"system_prompt": 42}, "system_prompt: Must be text (a JSON string)."),
        ({"system_prompt": too_long}, "system_prompt: Ensure this field has no more than"),
    ]
    for body, message in cases:
        response = alice_client.http.patch(url, json=body)
        assert response.status_code == 400, body
        assert response.json()["error"]["message"].startswith(message), response.text
    created = alice_client.http.post("/api/conversations/", json={"system_prompt": too_long})
    assert created.status_code == 400
    stored = Conversation.objects.get()
    assert stored.system_prompt == FRENCH and stored.title == ""


def test_charlie_can_neither_change_nor_see_alices_system_prompt(
    server, alice_client, charlie_client
):
    conversation = alice_client.new_conversation(system_prompt=FRENCH)
    url = f"/api/conversations/{conversation['id']}/"
    changed = charlie_client.http.patch(url, json={"system_prompt": "Obey charlie."})
    assert changed.status_code == 404
    assert charlie_client.http.get(url).status_code == 404
    assert charlie_client.http.get("/api/conversations/").json()["results"] == []
    assert Conversation.objects.get().system_prompt == FRENCH


def test_exports_and_the_admin_show_the_system_prompt(server, stub, alice_client, bob, client_for):
    prompt = "Answer in <b>French</b>."
    conversation = alice_client.new_conversation(system_prompt=prompt)
    ask(alice_client, stub, conversation["id"], "Hi")
    base = f"/api/conversations/{conversation['id']}/export/?format="

    markdown = alice_client.http.get(base + "markdown").text
    assert f"## System prompt\n\n```\n{prompt}\n```\n\n## User\n\n_" in markdown
    assert alice_client.http.get(base + "json").json()["system_prompt"] == prompt
    example = json.loads(alice_client.http.get(base + "jsonl").text)
    assert example["messages"][0] == {"role": "system", "content": prompt}

    admin_page = f"/admin/conversations/conversation/{conversation['id']}/change/"
    page = client_for(bob).http.get(admin_page)
    assert "Answer in &lt;b&gt;French&lt;/b&gt;." in page.text


def test_a_reply_keeps_the_system_prompt_it_was_asked_under(
    server, stub, alice_client, bob, client_for
):
    conversation = alice_client.new_conversation(system_prompt="Answer in <i>French</i>.")
    url = f"/api/conversations/{conversation['id']}/"
    ask(alice_client, stub, conversation["id"], "Hi")
    assert alice_client.http.patch(url, json={"system_prompt": FRENCH}).status_code == 200
    ask(alice_client, stub, conversation["id"], "And now?")
    first = Message.objects.filter(role="assistant").order_by("created_at").first()
    # Asked again after the change, a reply is asked under the prompt of now.
    stub.queue(openai_stream(["Encore"]))
    again = alice_client.http.post(f"/api/messages/{first.pk}/regenerate/", json={})
    alice_client.wait_final(conversation["id"], again.json()["assistant_message"]["id"])
    assert stub.requests[-1].json["messages"][0] == {"role": "system", "content": FRENCH}

    export = alice_client.http.get(url + "export/?format=json").json()
    replies = [m for m in export["messages"] if m["role"] == "assistant"]
    prompts = [(m["content"], m["system_prompt"]) for m in replies]
    assert prompts == [
        ("D'accord", "Answer in <i>French</i>."),
        ("D'accord", FRENCH),
        ("Encore", FRENCH),
    ]
    markdown = alice_client.http.get(url + "export/?format=markdown").text
    assert markdown.count("Asked under an earlier system prompt") == 1
    earlier = "_Asked under an earlier system prompt:_\n\n```\nAnswer in <i>French</i>.\n```\n"
    assert earlier + "\n```\nD'accord\n```" in markdown
    # The fine-tuning example: the conversation as its last answer was asked.
    example = json.loads(alice_client.http.get(url + "export/?format=jsonl").text)
    assert example["messages"][0] == {"role": "system", "content": FRENCH}

    page = client_for(bob).http.get(f"/admin/conversations/message/{first.pk}/change/")
    assert "Answer in &lt;i&gt;French&lt;/i&gt;." in page.text

    # Emptied, the site's prompt holds, and the replies before say what they were asked under.
    assert alice_client.http.patch(url, json={"system_prompt": ""}).status_code == 200
    markdown = alice_client.http.get(url + "export/?format=markdown").text
    assert markdown.count("Asked under an earlier system prompt") == 3
    assert "## System prompt" not in markdown
    example = json.loads(alice_client.http.get(url + "export/?format=jsonl").text)
    assert example["messages"][0] == {"role": "system", "content": FRENCH}


def test_a_v1_conversations_replies_keep_the_system_messages_they_were_asked_under(
    server, stub, alice, client_for
):
    turns = [("system", "Be terse."), ("user", "Hi"), ("assistant", "Hey"), ("user", "Again")]
    answer = v1_completion(server, stub, alice, turns)
    wait_until_replies_settle()
    replies = Message.objects.filter(role="assistant").order_by("created_at")
    assert [(m.content, m.system_prompt) for m in replies] == [
        ("Hey", "Be terse."),
        ("Hello", "Be terse."),
    ]
    conversation_id = answer.headers["X-Chatsite-Conversation"]
    url = f"/api/conversations/{conversation_id}/export/?format="
    markdown = client_for(alice).http.get(url + "markdown").text
    assert "Asked under" not in markdown  # its system message is shown where it was given
    example = json.loads(client_for(alice).http.get(url + "jsonl").text)
    assert example["messages"][0] == {"role": "system", "content": "Be terse."}
