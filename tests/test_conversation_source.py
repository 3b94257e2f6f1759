"""Conversations tools start over /v1 are marked "api" and kept out of the chat sidebar:
listed apart on the pages, filterable in the API, the bulk export and the admin."""

import importlib
from datetime import timedelta

import openai
import pytest
from django.apps import apps
from django.utils import timezone

from conversations.apikeys import create_key
from conversations.models import Conversation, Message
from tests.chats import add_chat, sidebar_titles
from tests.stub import openai_stream

MODEL = "openai:stub-model"


@pytest.fixture
def api_conversation(server, stub, alice) -> Conversation:
    """A conversation alice's tool started over /v1, through OpenAI's SDK."""
    stub.queue(openai_stream(["Pong"]))
    key = create_key(alice, "tool")[1]
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0) as sdk:
        answer = sdk.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Ping from a tool"}]
        )
    assert answer.choices[0].message.content == "Pong"
    return Conversation.objects.get(title="Ping from a tool")


@pytest.fixture
def chat_conversation(alice_client) -> dict:
    return alice_client.new_conversation(title="Typed in the chat")


def test_v1_conversations_are_marked_api_and_chat_ones_chat(
    api_conversation, chat_conversation, alice_client
):
    assert api_conversation.source == "api"
    assert Conversation.objects.get(pk=chat_conversation["id"]).source == "chat"
    listed = alice_client.http.get("/api/conversations/").json()["results"]
    assert {(c["title"], c["source"]) for c in listed} == {
        ("Ping from a tool", "api"),
        ("Typed in the chat", "chat"),
    }
    detail = alice_client.conversation(str(api_conversation.pk))
    assert detail["source"] == "api"


def test_conversation_list_filters_by_source(api_conversation, chat_conversation, alice_client):
    def titles(query: str) -> list[str]:
        response = alice_client.http.get(f"/api/conversations/?{query}")
        assert response.status_code == 200, response.text
        return [c["title"] for c in response.json()["results"]]

    assert titles("source=api") == ["Ping from a tool"]
    assert titles("source=chat") == ["Typed in the chat"]
    bad = alice_client.http.get("/api/conversations/?source=cli")
    assert bad.status_code == 400
    assert '"cli" is not a valid choice.' in bad.json()["error"]["fields"]["source"][0]


def test_chat_sidebar_lists_chats_and_the_api_tab_lists_the_rest(
    api_conversation, chat_conversation, alice_client
):
    home = alice_client.http.get("/").text
    assert sidebar_titles(home) == ["Typed in the chat"]
    assert '<a href="/" aria-current="true">Chats</a>' in home
    assert 'href="/?source=api"' in home

    api_page = alice_client.http.get("/?source=api").text
    assert sidebar_titles(api_page) == ["Ping from a tool"]
    assert 'href="/?source=api" aria-current="true"' in api_page
    assert "/v1/chat/completions" in api_page

    # Opening the API conversation shows it among its own kind, marked as the current one.
    chat_page = alice_client.http.get(f"/c/{api_conversation.pk}/").text
    assert sidebar_titles(chat_page) == ["Ping from a tool"]
    assert 'class="current"' in chat_page and "Pong" in chat_page
    # An unknown source on a page is no error: the chats are shown.
    assert sidebar_titles(alice_client.http.get("/?source=cli").text) == ["Typed in the chat"]


def test_sidebar_has_no_source_tabs_for_users_without_api_conversations(
    chat_conversation, alice_client
):
    home = alice_client.http.get("/").text
    assert sidebar_titles(home) == ["Typed in the chat"]
    assert "?source=api" not in home


def test_nothing_of_alices_api_conversations_reaches_charlie(api_conversation, charlie_client):
    page = charlie_client.http.get("/?source=api").text
    assert sidebar_titles(page) == [] and "Ping from a tool" not in page
    assert "No conversations from the API." in page
    listed = charlie_client.http.get("/api/conversations/?source=api").json()
    assert listed["count"] == 0
    export = charlie_client.http.get("/api/export/?source=api").json()
    assert export == {"conversations": []}


def test_bulk_export_takes_a_source(api_conversation, chat_conversation, alice_client):
    def exported(query: str) -> list[tuple[str, str]]:
        response = alice_client.http.get(f"/api/export/?{query}")
        assert response.status_code == 200, response.text
        return [(c["title"], c["source"]) for c in response.json()["conversations"]]

    assert exported("source=api") == [("Ping from a tool", "api")]
    assert exported("source=chat") == [("Typed in the chat", "chat")]
    assert len(exported("format=json")) == 2
    bad = alice_client.http.get("/api/export/?source=everything")
    assert bad.status_code == 400 and "source" in bad.json()["error"]["fields"]


def test_staff_filter_the_admin_list_by_source(
    api_conversation, chat_conversation, client_for, bob
):
    staff = client_for(bob)
    changelist = "/admin/conversations/conversation/"
    assert 'href="?source__exact=api"' in staff.http.get(changelist).text  # the filter's choice
    api_only = staff.http.get(f"{changelist}?source__exact=api").text
    assert "Ping from a tool" in api_only and "Typed in the chat" not in api_only
    assert "OpenAI-compatible API" in api_only  # the column and the filter name it
    chat_only = staff.http.get(f"{changelist}?source__exact=chat").text
    assert "Typed in the chat" in chat_only and "Ping from a tool" not in chat_only


def test_upgrade_marks_conversations_v1_stored_before_the_field(alice):
    """The migration tells earlier /v1 conversations by their first message's timestamp,
    which /v1 sets to the conversation's own; a chat's messages come in later requests."""
    migration = importlib.import_module("conversations.migrations.0003_conversation_source")
    then = timezone.now() - timedelta(days=30)
    from_v1, typed = add_chat(alice, "Stored by /v1"), add_chat(alice, "Typed in the chat")
    Conversation.objects.update(created_at=then, source="chat")  # as right after AddField
    Message.objects.filter(conversation=from_v1).update(created_at=then)
    Message.objects.filter(conversation=typed).update(created_at=then + timedelta(seconds=3))

    migration.mark_api_conversations(apps, None)

    assert Conversation.objects.get(pk=from_v1.pk).source == "api"
    assert Conversation.objects.get(pk=typed.pk).source == "chat"
