"""Another user's conversations and messages do not exist for you; anonymous users must log in."""

import pytest

from conversations.models import Conversation, Message
from tests.stub import Gate, gated_stream, openai_stream

ALICE_SECRET = "alice's private question about her health"


@pytest.fixture
def alice_chat(server, stub, alice_client) -> dict:
    """alice's conversation with one finished exchange: ids and its state as alice sees it."""
    stub.queue(openai_stream(["Private", " answer"]))
    conversation = alice_client.new_conversation(title="Alice only")
    body = alice_client.send(conversation["id"], ALICE_SECRET).json()
    reply = alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])
    assert reply["status"] == "complete"
    return {
        "conversation": conversation["id"],
        "user_message": body["user_message"]["id"],
        "reply": reply["id"],
        "state": alice_client.conversation(conversation["id"]),
    }


def foreign_requests(ids: dict) -> list[tuple[str, str, dict | None]]:
    conversation, user_message, reply = ids["conversation"], ids["user_message"], ids["reply"]
    return [
        ("GET", f"/api/conversations/{conversation}/", None),
        ("PATCH", f"/api/conversations/{conversation}/", {"title": "Charlie was here"}),
        ("DELETE", f"/api/conversations/{conversation}/", None),
        ("POST", f"/api/conversations/{conversation}/messages/", {"content": "Hi alice"}),
        ("GET", f"/api/messages/{reply}/stream/", None),
        ("POST", f"/api/messages/{reply}/stop/", {}),
        ("POST", f"/api/messages/{reply}/choose/", None),
        ("POST", f"/api/messages/{reply}/regenerate/", {}),
        ("POST", f"/api/messages/{user_message}/regenerate/", {}),
        ("GET", f"/c/{conversation}/", None),
    ]


def counts() -> tuple[int, int]:
    return Conversation.objects.count(), Message.objects.count()


def test_other_user_gets_404_on_every_endpoint_and_changes_nothing(
    alice_chat, stub, alice_client, charlie_client
):
    before = counts()
    provider_calls = len(stub.requests)
    for method, url, body in foreign_requests(alice_chat):
        response = charlie_client.http.request(method, url, json=body)
        assert response.status_code == 404, (method, url, response.status_code)
        assert ALICE_SECRET not in response.text, (method, url)
        assert "Private answer" not in response.text, (method, url)
        if url.startswith("/api/"):
            assert response.json()["error"]["code"] == "not_found", (method, url)
    assert counts() == before
    assert alice_client.conversation(alice_chat["conversation"]) == alice_chat["state"]
    assert len(stub.requests) == provider_calls, "charlie started no generation"


def test_other_user_cannot_stop_a_running_reply(server, stub, alice_client, charlie_client):
    gate = Gate()
    stub.queue(gated_stream(["Still"], gate, after=[" going"]))
    conversation = alice_client.new_conversation()
    body = alice_client.send(conversation["id"], "Long task").json()
    gate.wait_reached()
    try:
        response = charlie_client.http.post(
            f"/api/messages/{body['assistant_message']['id']}/stop/"
        )
        assert response.status_code == 404
        stream = charlie_client.http.get(body["stream_url"])
        assert stream.status_code == 404
        assert "Still" not in stream.text
    finally:
        gate.open()
    reply = alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])
    assert (reply["status"], reply["content"]) == ("complete", "Still going")
    assert not stub.requests[0].disconnected.is_set()


def test_conversation_lists_show_only_your_own(alice_chat, alice_client, charlie_client):
    mine = charlie_client.new_conversation(title="Charlie's own")
    listed = [c["id"] for c in charlie_client.http.get("/api/conversations/").json()["results"]]
    assert listed == [mine["id"]]
    page = charlie_client.http.get("/")
    assert page.status_code == 200
    assert "Charlie&#x27;s own" in page.text or "Charlie's own" in page.text
    assert "Alice only" not in page.text
    assert alice_chat["conversation"] not in page.text
    alice_listed = [c["id"] for c in alice_client.http.get("/api/conversations/").json()["results"]]
    assert alice_listed == [alice_chat["conversation"]]


def test_anonymous_users_must_log_in(alice_chat, stub, client_for):
    anonymous = client_for(None)
    before = counts()
    for method, url, body in foreign_requests(alice_chat):
        response = anonymous.http.request(method, url, json=body)
        if url.startswith("/api/"):
            assert response.status_code in (401, 403), (method, url, response.status_code)
            assert response.json()["error"]["message"], (method, url)
        else:
            assert response.status_code == 302, (method, url)
            assert response.headers["location"].startswith("/accounts/login/?next=")
        assert ALICE_SECRET not in response.text
    for url in ("/api/conversations/", "/api/models/"):
        assert anonymous.http.get(url).status_code in (401, 403), url
    assert anonymous.http.post("/api/conversations/", json={}).status_code in (401, 403)
    list_page = anonymous.http.get("/")
    assert list_page.status_code == 302
    assert list_page.headers["location"].startswith("/accounts/login/")
    assert counts() == before


def test_pages_showing_alices_conversations_are_never_stored_by_her_browser(
    alice_chat, alice_client
):
    # On a shared computer, Back after logging out must not bring them up from the cache.
    for path in ("/", f"/c/{alice_chat['conversation']}/", "/settings/usage/"):
        page = alice_client.http.get(path)
        assert page.status_code == 200, path
        assert "no-store" in page.headers["Cache-Control"], path
        assert "private" in page.headers["Cache-Control"], path
    assert ALICE_SECRET in alice_client.http.get(f"/c/{alice_chat['conversation']}/").text
