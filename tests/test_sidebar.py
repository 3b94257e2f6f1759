"""The sidebar lists the most recent conversations with the page, and the open one; older
ones are offered, to load from the API (sidebar.js; its browser test is in tests/browser)."""

import re
from datetime import timedelta

from conversations.models import Conversation
from conversations.views import SIDEBAR_SIZE
from tests.chats import dated_chats, sidebar_titles

OLDER = 'id="older-conversations"'


def chats(owner, count: int) -> list[Conversation]:
    """`count` conversations, "Chat 000" the newest."""
    return dated_chats(owner, [f"Chat {n:03}" for n in range(count)])


def test_the_page_lists_the_most_recent_and_offers_the_older(server, alice, alice_client):
    chats(alice, SIDEBAR_SIZE + 1)
    html = alice_client.http.get("/").text
    assert sidebar_titles(html) == [f"Chat {n:03}" for n in range(SIDEBAR_SIZE)]
    assert OLDER in html and f'data-page-size="{SIDEBAR_SIZE}"' in html


def test_no_offer_when_every_conversation_is_listed(server, alice, alice_client):
    chats(alice, SIDEBAR_SIZE)
    html = alice_client.http.get("/").text
    assert len(sidebar_titles(html)) == SIDEBAR_SIZE and OLDER not in html


def test_an_old_conversation_opened_is_listed_last_as_the_current_one(server, alice, alice_client):
    oldest = chats(alice, SIDEBAR_SIZE + 5)[-1]
    html = alice_client.http.get(f"/c/{oldest.pk}/").text
    titles = sidebar_titles(html)
    assert len(titles) == SIDEBAR_SIZE + 1 and titles[-1] == oldest.title
    assert f'<li data-conversation-id="{oldest.pk}"' in html
    assert re.search(rf'<li data-conversation-id="{oldest.pk}"[^>]*class="current"', html)


def test_a_new_chat_left_empty_is_listed_only_while_it_is_open(server, alice, alice_client):
    chats(alice, 2)
    named = Conversation.objects.create(owner=alice, title="Named, no message yet")
    prompted = Conversation.objects.create(owner=alice, system_prompt="Be brief.")
    empty = Conversation.objects.create(owner=alice)  # "New chat", the newest

    opened = alice_client.http.get(f"/c/{empty.pk}/").text
    assert sidebar_titles(opened) == [
        "New chat",
        "New chat",
        "Named, no message yet",
        "Chat 000",
        "Chat 001",
    ]
    assert re.search(rf'<li data-conversation-id="{empty.pk}"[^>]*class="current"', opened)

    elsewhere = alice_client.http.get("/").text
    assert f'data-conversation-id="{empty.pk}"' not in elsewhere
    assert f'data-conversation-id="{prompted.pk}"' in elsewhere
    assert f'data-conversation-id="{named.pk}"' in elsewhere

    # One left empty a while ago, opened again: in its place, not last.
    between = Conversation.objects.create(
        owner=alice,
        updated_at=Conversation.objects.get(title="Chat 001").updated_at + timedelta(hours=1),
    )
    reopened = sidebar_titles(alice_client.http.get(f"/c/{between.pk}/").text)
    assert reopened == ["New chat", "Named, no message yet", "Chat 000", "New chat", "Chat 001"]

    listed = alice_client.http.get("/api/conversations/", params={"started": "true"}).json()
    assert str(empty.pk) not in {c["id"] for c in listed["results"]} and listed["count"] == 4
    everything = alice_client.http.get("/api/conversations/").json()  # API clients see all
    assert everything["count"] == 6


def test_charlie_is_offered_nothing_of_alices(server, alice, charlie_client):
    chats(alice, SIDEBAR_SIZE + 1)
    html = charlie_client.http.get("/").text
    assert sidebar_titles(html) == [] and OLDER not in html
