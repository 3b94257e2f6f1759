"""A stream followed with a session ends when the session does: a logout elsewhere, the
user's password changed elsewhere, the user deactivated (conversations/stream_watch.py).
The reply goes on and is kept; the streams of other sessions go on."""

import contextlib
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations import stream_watch
from conversations.models import Message
from conversations.stream_watch import live_sessions, open_session
from tests.client import (
    ChatClient,
    form_login,
    form_logout,
    read_events,
    rest_once_closed,
    text_of,
)
from tests.conftest import session_for, wait_until_replies_settle
from tests.stub import Gate, Script, openai_chunk, sse

END = [openai_chunk(finish_reason="stop"), sse("[DONE]")]


@pytest.fixture
def watched_server(start_server):
    # A silent stream learns of the check at its next heartbeat: they come as often as the
    # checks, however long CHATSITE_HEARTBEAT_SECONDS is.
    return start_server(CHATSITE_SESSION_RECHECK_SECONDS="0.1", CHATSITE_HEARTBEAT_SECONDS="120")


def held_stream(streams: contextlib.ExitStack, stub, client: ChatClient) -> tuple:
    """A reply held after its first token ("Hel"), its stream open; (events, gate, ids)."""
    gate = Gate()
    stub.queue(Script(steps=[openai_chunk("Hel"), gate, openai_chunk("lo"), *END]))
    conversation = client.new_conversation()
    body = client.send(conversation["id"], "Greet me").json()
    response = streams.enter_context(client.http.stream("GET", body["stream_url"]))
    assert response.status_code == 200
    events = read_events(response.iter_bytes())
    assert next(events).data["content"] == "Hel"
    gate.wait_reached()
    return events, gate, (conversation["id"], body["assistant_message"]["id"])


def reply_when_settled(reply_id: str) -> tuple[str, str]:
    wait_until_replies_settle()
    reply = Message.objects.get(pk=reply_id)
    return reply.status, reply.content


def test_logging_out_elsewhere_ends_the_sessions_stream_but_not_the_reply(
    watched_server, stub, alice, bob, client_for
):
    cookies = form_login(watched_server.url, "alice")
    alice_tab = ChatClient(watched_server.url, cookies["sessionid"])
    with contextlib.ExitStack() as streams:
        events, gate, (_, reply_id) = held_stream(streams, stub, alice_tab)
        bobs_events, bobs_gate, _ = held_stream(streams, stub, client_for(bob, watched_server.url))

        form_logout(watched_server.url, cookies)  # in another tab
        # The stream closes with no final event (a client reconnects, and is refused).
        assert rest_once_closed(events) == []
        refused = alice_tab.http.get(f"/api/messages/{reply_id}/stream/")
        assert refused.status_code == 401  # and is refused, as the session's other requests
        bobs_gate.open()
        rest = list(bobs_events)
        assert (text_of(rest), rest[-1].name) == ("lo", "done")  # other sessions go on

    alice_tab.close()
    gate.open()
    assert reply_when_settled(reply_id) == ("complete", "Hello")  # kept, whole


@pytest.mark.parametrize("change", ["deactivated", "password changed elsewhere"])
def test_a_users_streams_end_when_they_are_deactivated_or_change_password_elsewhere(
    watched_server, stub, alice, client_for, change
):
    alice_tab = client_for(alice, watched_server.url)
    with contextlib.ExitStack() as streams:
        events, gate, (_, reply_id) = held_stream(streams, stub, alice_tab)
        if change == "deactivated":
            alice.is_active = False
        else:
            alice.set_password("a-new-password-123")
        alice.save()
        assert rest_once_closed(events) == []
    gate.open()
    assert reply_when_settled(reply_id) == ("complete", "Hello")


def test_two_queries_tell_which_of_many_sessions_still_log_their_user_in(alice, bob, charlie):
    alice_key, logged_out_key, expired_key = (session_for(alice) for _ in range(3))
    sessions = {
        "alice": open_session(alice_key, alice),
        "logged out": open_session(logged_out_key, alice),
        "expired": open_session(expired_key, alice),
        "deactivated": open_session(session_for(bob), bob),
        "password changed": open_session(session_for(charlie), charlie),
    }
    Session.objects.filter(session_key=logged_out_key).delete()
    Session.objects.filter(session_key=expired_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    bob.is_active = False
    bob.save()
    charlie.set_password("a-new-password-123")
    charlie.save()

    with CaptureQueriesContext(connection) as queries:
        live = live_sessions(list(sessions.values()))
    assert live == {sessions["alice"]}
    assert len(queries.captured_queries) == 2


def test_a_watch_asks_about_its_credentials_a_bounded_number_at_a_time(monkeypatch):
    # Well under SQLite's limit on a statement's parameters, however many streams are open.
    asked: list[list[int]] = []

    def still_valid(credentials: list[int]) -> set[int]:
        asked.append(credentials)
        return {c for c in credentials if c % 2}

    monkeypatch.setattr(stream_watch, "PER_QUERY", 2)
    watch = stream_watch.OpenCredentials(still_valid, "CHATSITE_SESSION_RECHECK_SECONDS")
    assert watch._valid_among([1, 2, 3, 4, 5]) == {1, 3, 5}
    assert asked == [[1, 2], [3, 4], [5]]
