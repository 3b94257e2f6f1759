"""The conversation list is paginated, filtered and private; forged fields change nothing."""

import uuid
from datetime import timedelta

from django.utils import timezone

from conversations.models import Conversation, Message
from tests.stub import Gate, gated_stream, openai_stream


def titles(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [c["title"] for c in response.json()["results"]]


def test_conversation_list_is_paginated_most_recent_first(server, alice, alice_client):
    now = timezone.now()
    Conversation.objects.bulk_create(
        Conversation(owner=alice, title=f"Chat {n:02}", model="m", updated_at=now - timedelta(n))
        for n in range(55)
    )
    first = alice_client.http.get("/api/conversations/").json()
    assert first["count"] == 55 and first["previous"] is None
    assert [c["title"] for c in first["results"]] == [f"Chat {n:02}" for n in range(50)]
    second = alice_client.http.get(first["next"]).json()
    assert [c["title"] for c in second["results"]] == [f"Chat {n:02}" for n in range(50, 55)]
    assert second["next"] is None

    assert len(titles(alice_client.http.get("/api/conversations/?page_size=7"))) == 7
    assert len(titles(alice_client.http.get("/api/conversations/?page_size=1000"))) == 55
    # Leading zeros are the same number, however many.
    assert len(titles(alice_client.http.get("/api/conversations/?page_size=00000000007"))) == 7
    assert titles(alice_client.http.get("/api/conversations/?page=0000000002")) == [
        f"Chat {n:02}" for n in range(50, 55)
    ]
    beyond = alice_client.http.get("/api/conversations/?page=9")
    assert beyond.status_code == 404 and beyond.json()["error"]["code"] == "not_found"


def test_pages_list_conversations_updated_at_the_same_instant_once_each_by_id(
    server, alice, alice_client
):
    # Made in an order unlike their ids' (a database's order for ties is its own choice).
    ids = sorted((uuid.uuid4() for _ in range(7)), key=lambda i: str(i)[::-1])
    now = timezone.now()
    Conversation.objects.bulk_create(
        Conversation(id=i, owner=alice, model="m", updated_at=now) for i in ids
    )
    seen, page = [], "/api/conversations/?page_size=2"
    while page:
        listed = alice_client.http.get(page).json()
        seen += [uuid.UUID(c["id"]) for c in listed["results"]]
        page = listed["next"]
    assert seen == sorted(ids, reverse=True)


def test_conversation_list_filters_by_update_time_model_and_text(server, alice, alice_client):
    now = timezone.now()
    old = Conversation.objects.create(
        owner=alice, title="Old", model="openai:stub-model", updated_at=now - timedelta(days=3)
    )
    Conversation.objects.create(owner=alice, title="New", model="openai:stub-other")
    recipe = Conversation.objects.create(owner=alice, title="Recipe", model="openai:stub-model")
    recipe.messages.create(role="user", status="complete", content="How do I make PANCAKES?")
    old.messages.create(role="user", status="complete", content="nothing tasty")
    since = (now - timedelta(days=1)).isoformat()

    def listed(**query: str) -> set[str]:
        return set(titles(alice_client.http.get("/api/conversations/", params=query)))

    assert listed(updated_after=since) == {"New", "Recipe"}
    assert listed(model="openai:stub-other") == {"New"}
    assert listed(q="pancakes") == {"Recipe"}  # message text, any case
    assert listed(q="recip") == {"Recipe"}  # title
    assert listed(q="o", model="openai:stub-model", updated_after=since) == {"Recipe"}
    bad = alice_client.http.get("/api/conversations/?updated_after=yesterday")
    assert bad.status_code == 400
    assert bad.json()["error"]["message"].startswith("updated_after:")


def test_a_renamed_conversation_is_listed_as_updated(server, alice, alice_client):
    # A tool syncing with ?updated_after= must see a new title or system prompt.
    now = timezone.now()
    since = {"updated_after": (now - timedelta(days=1)).isoformat()}
    Conversation.objects.create(owner=alice, title="Kept", model="m", updated_at=now - timedelta(3))
    renamed = Conversation.objects.create(
        owner=alice, title="Old name", model="m", updated_at=now - timedelta(days=3)
    )
    assert titles(alice_client.http.get("/api/conversations/", params=since)) == []
    changed = alice_client.http.patch(f"/api/conversations/{renamed.id}/", json={"title": "New"})
    assert changed.status_code == 200, changed.text
    assert titles(alice_client.http.get("/api/conversations/", params=since)) == ["New"]


def test_lists_never_show_other_users_conversations(
    server, alice, bob, alice_client, charlie_client, client_for
):
    Conversation.objects.create(owner=alice, title="Alice's", model="m")
    Conversation.objects.create(owner=bob, title="Bob's", model="m")
    assert titles(charlie_client.http.get("/api/conversations/?owner=alice")) == []
    assert titles(charlie_client.http.get("/api/conversations/?q=Alice")) == []
    # The list is the caller's own for staff too; staff read others' data only by export.
    assert titles(client_for(bob).http.get("/api/conversations/?owner=alice")) == ["Bob's"]


def test_fields_a_client_may_not_set_are_never_stored(
    server, stub, alice, charlie, alice_client, charlie_client
):
    forged_id = str(uuid.uuid4())
    charlies = charlie_client.new_conversation(title="Charlie's")
    conversation = assert_create_ignores_forged_fields(alice_client, alice, charlie, forged_id)
    assert_rename_ignores_forged_fields(alice_client, conversation, alice, charlie)
    reply = assert_send_ignores_forged_fields(
        alice_client, stub, conversation, charlies["id"], forged_id
    )

    stub.queue(openai_stream(["Again"], usage=(3, 1)))
    regenerated = alice_client.http.post(
        f"/api/messages/{reply['id']}/regenerate/",
        json={"status": "complete", "content": "forged", "total_tokens": 1},
    ).json()["assistant_message"]
    final = alice_client.wait_final(str(conversation.pk), regenerated["id"])
    assert (final["content"], final["total_tokens"]) == ("Again", 4)


def assert_create_ignores_forged_fields(alice_client, alice, charlie, forged_id: str):
    created = alice_client.http.post(
        "/api/conversations/",
        json={
            "title": "Mine",
            "id": forged_id,
            "owner": charlie.pk,
            "created_at": "2000-01-01T00:00:00Z",
            "updated_at": "2000-01-01T00:00:00Z",
        },
    ).json()
    conversation = Conversation.objects.get(pk=created["id"])
    assert (str(conversation.pk) != forged_id, conversation.owner) == (True, alice)
    assert conversation.created_at.year == timezone.now().year
    return conversation


def assert_rename_ignores_forged_fields(alice_client, conversation, alice, charlie) -> None:
    renamed = alice_client.http.patch(
        f"/api/conversations/{conversation.pk}/",
        json={"title": "Renamed", "owner": charlie.pk, "model": "openai:stub-other"},
    )
    assert renamed.status_code == 200
    conversation.refresh_from_db()
    assert (conversation.title, conversation.owner, conversation.model) == (
        "Renamed",
        alice,
        "openai:stub-model",
    )


def assert_send_ignores_forged_fields(
    alice_client, stub, conversation, charlies_id: str, forged_id: str
) -> dict:
    """The reply, stored as the provider sent it."""
    stub.queue(openai_stream(["Real"], usage=(3, 1)))
    sent = alice_client.send(
        str(conversation.pk),
        "Hello",
        id=forged_id,
        role="assistant",
        status="complete",
        total_tokens=99999,
        prompt_tokens=99999,
        usage_source="provider",
        conversation=charlies_id,
        parent=forged_id,
        error="forged",
        metadata={"forged": True},
    ).json()
    reply = alice_client.wait_final(str(conversation.pk), sent["assistant_message"]["id"])
    asked = Message.objects.get(pk=sent["user_message"]["id"])
    assert (asked.role, asked.total_tokens, asked.error, asked.metadata) == ("user", None, "", {})
    assert asked.conversation_id == conversation.pk and str(asked.pk) != forged_id
    assert (reply["total_tokens"], reply["content"]) == (4, "Real")
    assert Message.objects.filter(conversation_id=charlies_id).count() == 0
    return reply


def test_a_reply_that_finishes_moves_its_conversation_to_the_top(server, stub, alice_client):
    gate = Gate()
    stub.queue(gated_stream(["Thinking"], gate, after=[" done"]))
    asked = alice_client.new_conversation(title="Asked first")
    reply_id = alice_client.send(asked["id"], "Hi").json()["assistant_message"]["id"]
    gate.wait_reached()
    alice_client.new_conversation(title="Opened while it ran")
    assert titles(alice_client.http.get("/api/conversations/"))[0] == "Opened while it ran"

    gate.open()
    assert alice_client.wait_final(asked["id"], reply_id)["content"] == "Thinking done"
    assert titles(alice_client.http.get("/api/conversations/"))[0] == "Asked first"
