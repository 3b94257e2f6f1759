"""A user's usage against their budget: GET /api/usage/ and the usage page."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from conversations.models import Conversation, UserBudget
from tests.chats import add_chat


@pytest.fixture
def alice_usage(alice):
    """alice's replies: two today on two models, one 10 days ago, one 40 days ago."""
    UserBudget.objects.create(user=alice, tokens_per_day=1000, requests_per_minute=5)
    now = timezone.now()
    add_chat(alice, "Today", total_tokens=120)
    add_chat(alice, "Also today", model="openai:stub-other", total_tokens=30)
    add_chat(alice, "Last week", total_tokens=500, created_at=now - timedelta(days=10))
    add_chat(alice, "Long ago", total_tokens=9000, created_at=now - timedelta(days=40))


def test_usage_counts_todays_tokens_and_the_last_minute_against_the_users_limits(
    server, alice_usage, alice_client
):
    usage = alice_client.http.get("/api/usage/").json()
    assert usage["username"] == "alice"
    assert usage["today"]["tokens"] == 150 and usage["today"]["tokens_per_day"] == 1000
    resets_at = usage["today"]["resets_at"]
    assert timezone.now() < datetime.fromisoformat(resets_at) <= timezone.now() + timedelta(days=1)
    assert usage["last_minute"] == {"replies": 2, "requests_per_minute": 5}
    assert usage["by_model"] == [  # the last 30 days
        {"model": "openai:stub-model", "replies": 2, "tokens": 620},
        {"model": "openai:stub-other", "replies": 1, "tokens": 30},
    ]


def test_without_own_limits_the_sites_apply(server, alice, alice_client):
    usage = alice_client.http.get("/api/usage/").json()  # the test site sets none
    assert usage["today"] == {**usage["today"], "tokens": 0, "tokens_per_day": None}
    assert usage["last_minute"] == {"replies": 0, "requests_per_minute": None}
    assert usage["by_model"] == []


def test_charlie_sees_none_of_alices_usage(server, alice_usage, charlie_client):
    usage = charlie_client.http.get("/api/usage/").json()
    assert usage["username"] == "charlie"
    assert usage["today"]["tokens"] == 0 and usage["last_minute"]["replies"] == 0
    assert usage["by_model"] == []
    assert "No replies yet." in charlie_client.http.get("/settings/usage/").text


def test_the_usage_page_shows_the_same_figures(server, alice_usage, alice_client, client_for):
    page = alice_client.http.get("/settings/usage/")
    assert page.status_code == 200
    assert "150 tokens of your daily 1,000" in page.text
    assert "2 replies started in the last minute, of 5 a minute" in page.text
    assert "<td>openai:stub-model</td><td>2</td><td>620</td>" in page.text
    assert 'href="/settings/usage/"' in alice_client.http.get("/").text  # linked from every page

    anonymous = client_for(None)
    assert anonymous.http.get("/settings/usage/").status_code == 302  # to the login page
    assert anonymous.http.get("/api/usage/").status_code in (401, 403)


def test_a_deleted_conversation_still_counts_today_and_the_page_says_why(
    server, alice_usage, alice_client
):
    today = Conversation.objects.get(title="Today")
    assert alice_client.http.delete(f"/api/conversations/{today.pk}/").status_code == 204
    usage = alice_client.http.get("/api/usage/").json()
    assert usage["username"] == "alice"
    assert usage["today"]["tokens"] == 150  # the budget still counts it
    assert usage["by_model"][0] == {"model": "openai:stub-model", "replies": 1, "tokens": 500}
    page = alice_client.http.get("/settings/usage/").text
    assert "150 tokens of your daily 1,000" in page
    assert "conversations deleted since: deleting gives no tokens back" in page
