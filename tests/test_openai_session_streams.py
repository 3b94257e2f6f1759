"""The OpenAI-compatible endpoint called with a session (a page's script) instead of an API
key: its completion is watched as a key's is, and ends when the session does (a logout, or a
password change, in another tab here). As when a key is revoked, no one can resume it, so the
reply stops, its text kept (conversations/stream_watch.py)."""

import concurrent.futures
import json

import httpx
import pytest

from tests.client import first_text, form_login, form_logout, rest_once_closed
from tests.replies import HISTORY, MODEL, stored_reply
from tests.stub import Gate, gated_stream
from tests.test_sessions import NEW_PASSWORD


@pytest.fixture
def watched_server(start_server):
    return start_server(CHATSITE_SESSION_RECHECK_SECONDS="0.1")


def session_client(server_url: str, username: str) -> tuple[httpx.Client, dict[str, str]]:
    """A client logged in through the login form, sending its CSRF token as a page does."""
    cookies = form_login(server_url, username)
    headers = {"X-CSRFToken": cookies["csrftoken"]}
    return httpx.Client(base_url=server_url, cookies=cookies, headers=headers), cookies


def change_own_password(server_url: str, cookies: dict[str, str]) -> None:
    """In another tab of the same browser: Django renews the session, the old one ends."""
    form = {"old_password": "alice-password", **NEW_PASSWORD}
    with httpx.Client(base_url=server_url, cookies=cookies) as http:
        response = http.post(
            "/accounts/password_change/", data={**form, "csrfmiddlewaretoken": cookies["csrftoken"]}
        )
    assert response.status_code == 302, response.text


@pytest.mark.parametrize("end_session", [form_logout, change_own_password])
def test_a_session_ending_mid_stream_stops_its_completion_keeping_the_text(
    watched_server, stub, alice, end_session
):
    gate = Gate()
    stub.queue(gated_stream(["Before"], gate, after=[" and after"]))
    client, cookies = session_client(watched_server.url, "alice")
    body = {"model": MODEL, "messages": HISTORY[1:2], "stream": True}
    with client, client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200, response.read()
        lines = response.iter_lines()
        assert first_text(lines) == "Before"
        end_session(watched_server.url, cookies)  # in another tab
        # The stream closes (open, its heartbeats would keep it going), its last line the error.
        last = [line for line in rest_once_closed(lines) if line.startswith("data: ")][-1]
        error = json.loads(last.removeprefix("data: "))
        assert error["error"] == {
            "code": "session_ended",
            "message": "The session ended: log in again.",
            "type": "invalid_request_error",  # OpenAI's shape, as its 401 would have had
            "param": None,
        }
    assert stub.requests[-1].wait_disconnected(), "the provider was still generating"
    reply = stored_reply()
    assert (reply.status, reply.content, reply.error_code) == ("stopped", "Before", "session_ended")
    assert "session" in reply.error
    gate.open()


def test_a_session_ending_while_a_whole_completion_is_awaited_answers_401(
    watched_server, stub, alice
):
    gate = Gate()
    stub.queue(gated_stream(["Half"], gate, after=[" of it"]))
    client, cookies = session_client(watched_server.url, "alice")
    body = {"model": MODEL, "messages": HISTORY[1:2]}
    with client, concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(client.post, "/v1/chat/completions", json=body, timeout=60)
        gate.wait_reached()
        form_logout(watched_server.url, cookies)
        refused = answer.result()
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"]["code"] == "session_ended"
    assert stub.requests[-1].wait_disconnected(), "the provider was still generating"
    reply = stored_reply()
    assert (reply.status, reply.content, reply.error_code) == ("stopped", "Half", "session_ended")
    gate.open()


def test_a_completion_whose_session_lives_on_runs_to_its_end(watched_server, stub, alice):
    gate = Gate()
    stub.queue(gated_stream(["Before"], gate, after=[" and after"]))
    client, _ = session_client(watched_server.url, "alice")
    body = {"model": MODEL, "messages": HISTORY[1:2], "stream": True}
    with client, client.stream("POST", "/v1/chat/completions", json=body) as response:
        lines = response.iter_lines()
        assert first_text(lines) == "Before"
        # A heartbeat comes with each re-check (every 0.1 s here): five, and the session has
        # been found live several times over.
        heartbeats = (line for line in lines if line.startswith(":"))
        for _ in range(5):
            next(heartbeats)
        gate.open()
        data = [line for line in rest_once_closed(lines) if line.startswith("data: ")]
    assert data[-1] == "data: [DONE]" and not any("error" in line for line in data)
    reply = stored_reply()
    assert (reply.status, reply.content) == ("complete", "Before and after")
