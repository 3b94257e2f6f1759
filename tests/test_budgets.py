"""Budgets: over a limit, a 429 names the limit and its reset, before anything is stored."""

import re
import threading
import uuid

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from conversations.apikeys import create_key
from conversations.budgets import rate_held
from conversations.models import Message, UserBudget
from tests.chats import add_chat
from tests.client import wait_for
from tests.stub import openai_stream


def exchange(client, conversation_id: str, text: str = "Hi") -> dict:
    """Send a message and wait for its reply to finish (so the next one is not a 409)."""
    response = client.send(conversation_id, text)
    assert response.status_code == 201, response.text
    body = response.json()
    return client.wait_final(conversation_id, body["assistant_message"]["id"])


def assert_refused_before_anything_happens(response, stub, stored_before: int, code: str):
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert 1 <= int(response.headers["Retry-After"]) <= 24 * 3600
    assert Message.objects.count() == stored_before  # nothing stored
    assert len(stub.requests) == stored_before // 2  # and the provider was not called
    return error["message"]


def test_requests_per_minute_limit_gives_429_naming_the_limit_and_its_reset(
    server, stub, alice, alice_client
):
    UserBudget.objects.create(user=alice, requests_per_minute=2)
    conversation = alice_client.new_conversation()
    exchange(alice_client, conversation["id"])
    exchange(alice_client, conversation["id"])

    refused = alice_client.send(conversation["id"], "One too many")
    message = assert_refused_before_anything_happens(refused, stub, 4, "rate_limited")
    assert "limit of 2 requests per minute" in message
    assert re.search(r"resets at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", message)
    reply_id = Message.objects.filter(role="assistant").first().pk
    regenerate = alice_client.http.post(f"/api/messages/{reply_id}/regenerate/", json={})
    assert_refused_before_anything_happens(regenerate, stub, 4, "rate_limited")


def test_daily_token_budget_gives_429_once_used_up(server, stub, alice, alice_client):
    UserBudget.objects.create(user=alice, tokens_per_day=20)
    stub.queue(openai_stream(["A long", " answer"], usage=(12, 10)))
    conversation = alice_client.new_conversation()
    assert exchange(alice_client, conversation["id"])["total_tokens"] == 22

    refused = alice_client.send(conversation["id"], "More please")
    message = assert_refused_before_anything_happens(refused, stub, 2, "token_budget_exceeded")
    assert "daily budget of 20 tokens (22 used today)" in message
    assert "resets at" in message and "00:00:00" in message


def test_a_message_sent_before_is_given_back_over_a_budget_reached_since(
    server, stub, alice, alice_client
):
    # Its sender missed the answer and sends it again: it was counted when it was sent.
    UserBudget.objects.create(user=alice, requests_per_minute=1, tokens_per_day=20)
    stub.queue(openai_stream(["A long", " answer"], usage=(12, 10)))
    conversation = alice_client.new_conversation()
    client_id = str(uuid.uuid4())
    first = alice_client.send(conversation["id"], "Once", client_id=client_id)
    alice_client.wait_final(conversation["id"], first.json()["assistant_message"]["id"])

    again = alice_client.send(conversation["id"], "Once", client_id=client_id)
    assert again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["assistant_message"]["id"] == first.json()["assistant_message"]["id"]
    assert again.json()["assistant_message"]["total_tokens"] == 22
    # Anything new is still refused, and the same key with other text is no replay.
    new = alice_client.send(conversation["id"], "Twice")
    assert_refused_before_anything_happens(new, stub, 2, "rate_limited")
    other = alice_client.send(conversation["id"], "Twice", client_id=client_id)
    assert other.status_code == 422, other.text
    UserBudget.objects.filter(user=alice).update(requests_per_minute=0)  # the tokens alone
    assert alice_client.send(conversation["id"], "Once", client_id=client_id).status_code == 201
    new = alice_client.send(conversation["id"], "Twice")
    assert_refused_before_anything_happens(new, stub, 2, "token_budget_exceeded")


def test_one_users_budget_does_not_limit_another(server, stub, alice, alice_client, charlie_client):
    UserBudget.objects.create(user=alice, requests_per_minute=1)
    exchange(alice_client, alice_client.new_conversation()["id"])
    assert alice_client.send(alice_client.new_conversation()["id"]).status_code == 429
    exchange(charlie_client, charlie_client.new_conversation()["id"])


def test_site_default_applies_and_a_user_override_lifts_it(
    start_server, stub, alice, charlie, client_for
):
    server = start_server(CHATSITE_REQUESTS_PER_MINUTE="1")
    alice_client, charlie_client = client_for(alice, server.url), client_for(charlie, server.url)
    conversation = alice_client.new_conversation()
    exchange(alice_client, conversation["id"])
    assert alice_client.send(conversation["id"]).status_code == 429

    UserBudget.objects.create(user=alice, requests_per_minute=0)  # 0: no limit for alice
    exchange(alice_client, conversation["id"])
    exchange(alice_client, conversation["id"])
    charlies = charlie_client.new_conversation()
    exchange(charlie_client, charlies["id"])
    assert charlie_client.send(charlies["id"]).status_code == 429


def test_a_budget_is_set_per_user_in_admin_by_users_allowed_to(
    server, stub, alice, bob, alice_client, client_for
):
    root = get_user_model().objects.create_superuser("root", password="root-password")
    form = {"user": str(alice.pk), "tokens_per_day": "", "requests_per_minute": "1"}
    denied = client_for(bob).http.post("/admin/conversations/userbudget/add/", data=form)
    assert denied.status_code == 403  # staff review conversations; budgets need the permission
    added = client_for(root).http.post("/admin/conversations/userbudget/add/", data=form)
    assert added.status_code == 302, added.text
    budget = UserBudget.objects.get(user=alice)
    assert (budget.tokens_per_day, budget.requests_per_minute) == (None, 1)
    user_page = client_for(root).http.get(f"/admin/auth/user/{alice.pk}/change/").text
    assert 'name="budget-0-requests_per_minute"' in user_page  # also on the user's own page

    conversation = alice_client.new_conversation()
    exchange(alice_client, conversation["id"])
    assert alice_client.send(conversation["id"]).status_code == 429


def test_deleting_conversations_does_not_give_the_budget_back(server, stub, alice, alice_client):
    UserBudget.objects.create(user=alice, tokens_per_day=20, requests_per_minute=2)
    stub.queue(openai_stream(["A long", " answer"], usage=(12, 10)))
    first = alice_client.new_conversation()
    exchange(alice_client, first["id"])
    assert alice_client.http.delete(f"/api/conversations/{first['id']}/").status_code == 204
    usage = alice_client.http.get("/api/usage/").json()
    assert (usage["today"]["tokens"], usage["last_minute"]["replies"]) == (22, 1)
    refused = alice_client.send(alice_client.new_conversation()["id"], "Again")
    assert refused.status_code == 429
    assert "(22 used today)" in refused.json()["error"]["message"]

    UserBudget.objects.filter(user=alice).update(tokens_per_day=0)  # the rate limit alone now
    second = alice_client.new_conversation()
    exchange(alice_client, second["id"])
    assert alice_client.http.delete(f"/api/conversations/{second['id']}/").status_code == 204
    refused = alice_client.send(alice_client.new_conversation()["id"], "And again")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"


def test_the_answers_a_v1_request_brings_are_not_counted_as_replies(
    server, stub, alice, client_for
):
    UserBudget.objects.create(user=alice, requests_per_minute=2)
    _, secret = create_key(alice)
    history = ["user", "assistant", "user", "assistant", "user"]
    body = {
        "model": "openai:stub-model",
        "messages": [{"role": role, "content": f"{role} {n}"} for n, role in enumerate(history)],
    }
    headers = {"Authorization": f"Bearer {secret}"}
    answer = httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    alice_client = client_for(alice)
    usage = alice_client.http.get("/api/usage/").json()
    assert usage["last_minute"]["replies"] == 1
    assert [row["model"] for row in usage["by_model"]] == ["openai:stub-model"]
    exchange(alice_client, alice_client.new_conversation()["id"])  # the second of two
    assert alice_client.send(alice_client.new_conversation()["id"]).status_code == 429


def start_by_message(client, chat) -> httpx.Response:
    return client.send(str(chat.pk), "At the same instant")


def start_by_regenerating(client, chat) -> httpx.Response:
    reply = chat.messages.get(role="assistant")
    return client.http.post(f"/api/messages/{reply.pk}/regenerate/", json={})


def start_by_v1(client, chat) -> httpx.Response:
    body = {"model": "openai:stub-model", "messages": [{"role": "user", "content": "Hi"}]}
    return client.http.post("/v1/chat/completions", json=body)


def lock_waiters() -> int:
    """Sessions waiting for a lock this test's transaction holds (PostgreSQL; pg_locks, as
    pg_stat_activity is read once per transaction)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks"
            " WHERE NOT granted AND pg_backend_pid() = ANY(pg_blocking_pids(pid))"
        )
        return cursor.fetchone()[0]


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="watches PostgreSQL's lock table; SQLite's IMMEDIATE transactions take its one "
    "write lock at BEGIN, with no way to see a writer waiting for it",
)
@pytest.mark.parametrize("start", [start_by_message, start_by_regenerating, start_by_v1])
def test_starts_at_the_same_instant_cannot_both_take_the_last_request_of_the_minute(
    server, stub, alice, alice_client, start
):
    chat = add_chat(alice, "Earlier")  # one reply in the window
    UserBudget.objects.create(user=alice, requests_per_minute=2)
    answers: list[httpx.Response] = []
    racing = threading.Thread(target=lambda: answers.append(start(alice_client, chat)))
    # Another start in its transaction: its reply stored, the last of the minute, not committed.
    with rate_held(alice):
        add_chat(alice, "Another start")
        racing.start()  # passes the early check (it cannot see that reply yet)
        wait_for(lambda: answers or lock_waiters(), "the racing start to wait or answer")
        assert not answers, answers[0].text  # it stored its reply beside the uncommitted one
    racing.join()
    assert answers[0].status_code == 429, answers[0].text
    assert answers[0].json()["error"]["code"] == "rate_limited"
    assert Message.objects.filter(role="assistant").count() == 2  # nothing of its own stored
    assert stub.requests == []
