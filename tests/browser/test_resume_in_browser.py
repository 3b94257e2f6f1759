"""A reply survives the page: reload, a second tab, a cut connection, a crashed server."""

import re
import time

import pytest
from playwright.sync_api import expect

from conversations.models import Message
from tests.browser.pages import (
    gated_stream,
    last_reply,
    open_chat,
    open_new_chat,
    reply_body,
    send_message,
    wait_until_final,
)

pytestmark = pytest.mark.browser


def wait_for_saved_text(text: str) -> None:
    """Wait (not a timing check) until a checkpoint stored the reply's partial text."""
    deadline = time.monotonic() + 15
    while not Message.objects.filter(role="assistant", content=text).exists():
        assert time.monotonic() < deadline, f"no checkpoint saved {text!r}"
        time.sleep(0.05)


def wait_until(page: object, condition: object) -> None:
    """Let the page run until `condition()` holds (a wait, not a timing check)."""
    deadline = time.monotonic() + 15
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        page.wait_for_timeout(50)


def test_reload_mid_reply_shows_the_text_so_far_and_continues(browsing, stub, alice, new_gate):
    gate = new_gate()
    stub.queue(gated_stream(["Hel", "lo world"], [gate, None]))
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, "Greet me")
    expect(reply_body(page)).to_have_text("Hel")

    page.reload()
    expect(page.locator(".message.user .body")).to_have_text("Greet me")
    expect(reply_body(page)).to_have_text("Hel")
    expect(last_reply(page)).to_have_attribute("data-status", "streaming")
    expect(page.locator("#stop")).to_be_visible()
    gate.open()
    wait_until_final(page)
    expect(reply_body(page)).to_have_text("Hello world")
    assert len(stub.requests) == 1, "reloading must not start another generation"


def test_a_second_tab_follows_the_same_reply(browsing, stub, alice, new_gate):
    gate = new_gate()
    stub.queue(gated_stream(["Shared ", "reply"], [gate, None]))
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, "Hi")
    expect(reply_body(page)).to_have_text("Shared")

    other_tab = browsing.new_tab(page)
    open_chat(other_tab, page.url)
    expect(reply_body(other_tab)).to_have_text("Shared")
    gate.open()
    for tab in (page, other_tab):
        wait_until_final(tab)
        expect(reply_body(tab)).to_have_text("Shared reply")


def test_reply_continues_without_repeats_when_the_stream_connection_is_cut(
    start_server, open_browsing, stub, alice, new_gate
):
    # Every stream connection is closed after a fraction of a second, as a proxy might.
    server = start_server(CHATSITE_STREAM_MAX_SECONDS="0.2", CHATSITE_HEARTBEAT_SECONDS="0.05")
    gate, later = new_gate(), new_gate()
    stub.queue(gated_stream(["Hel", "lo again", "!"], [gate, later, None]))
    page = open_browsing(server.url).logged_in(alice)
    open_new_chat(page)

    streams = []
    page.on("request", lambda request: "/stream/" in request.url and streams.append(request))
    send_message(page, "Say it")
    expect(reply_body(page)).to_have_text("Hel")
    wait_until(page, lambda: len(streams) >= 2)  # the browser reconnected
    resumed_from = streams[1].all_headers().get("last-event-id", "")
    assert re.fullmatch(r"[1-9][0-9]*", resumed_from), "the reconnect did not resume"

    # Checked while the reply still streams (its end shows the stored text, repeats or not).
    def stays_while_reconnecting(text: str) -> None:
        expect(reply_body(page)).to_have_text(text)
        cut = len(streams)
        wait_until(page, lambda: len(streams) >= cut + 2)  # two more came and went
        expect(reply_body(page)).to_have_text(text)
        expect(last_reply(page)).to_have_attribute("data-status", "streaming")

    stays_while_reconnecting("Hel")
    gate.open()
    stays_while_reconnecting("Hello again")
    later.open()
    wait_until_final(page)
    expect(reply_body(page)).to_have_text("Hello again!")


def test_reply_cut_by_a_server_crash_says_it_was_interrupted(
    start_server, open_browsing, stub, alice, new_gate
):
    gate = new_gate()
    stub.queue(gated_stream(["Half an ans"], [gate]))
    first = start_server(CHATSITE_CHECKPOINT_SECONDS="0.05")
    session = open_browsing(first.url)
    page = session.logged_in(alice)
    open_new_chat(page)
    send_message(page, "Explain everything")
    expect(reply_body(page)).to_have_text("Half an ans")
    wait_for_saved_text("Half an ans")

    first.kill()
    notice = last_reply(page).locator(".reply-notice")
    expect(notice).to_have_text("Connection lost. Reconnecting…")
    expect(reply_body(page)).to_have_text("Half an ans")
    page.context.close()
    # Its stream broke and could not reconnect: the errors this test caused on purpose.
    session.watch_of(page).forgive_console_errors("/api/messages/")

    second = start_server()
    later = open_browsing(second.url).logged_in(alice)
    later.locator("#conversation-list a").first.click()
    reply = wait_until_final(later, "interrupted")
    expect(reply_body(later)).to_have_text("Half an ans")
    expect(reply.locator(".status")).to_have_text("Interrupted")
    expect(reply.locator(".reply-notice")).to_contain_text("Interrupted: The server stopped")


def reply_held_after_hel(session: object, stub: object, user: object, gate: object) -> object:
    """A page of `user`'s (logged in through `session`) whose new reply shows "Hel" and is
    held at `gate` before the rest."""
    stub.queue(gated_stream(["Hel", "lo again"], [gate, None]))
    page = session.logged_in(user)
    open_new_chat(page)
    send_message(page, "Say it")
    expect(reply_body(page)).to_have_text("Hel")
    return page


def test_a_reply_whose_session_ended_says_so_instead_of_reconnecting_for_ever(
    start_server, open_browsing, stub, alice, new_gate
):
    # Every stream connection is closed after a fraction of a second, as a proxy might: the
    # reconnect after the session ended is refused, and so is asking the API about the reply.
    server = start_server(CHATSITE_STREAM_MAX_SECONDS="0.2", CHATSITE_HEARTBEAT_SECONDS="0.05")
    gate = new_gate()
    session = open_browsing(server.url)
    page = reply_held_after_hel(session, stub, alice, gate)

    page.context.clear_cookies()  # logged out (in another tab, or the session expired)
    expect(page.locator("#composer-error")).to_have_text(
        "You are no longer logged in: reload the page to log in again."
    )
    expect(reply_body(page)).to_have_text("Hel")  # the text so far stays
    # Not "Reconnecting…", nor "Waiting for the model…" for ever.
    reply = wait_until_final(page, "unfollowed")
    expect(reply.locator(".status")).to_have_text("Logged out")
    expect(reply.locator(".reply-notice")).to_have_text(
        "This page can no longer follow the reply: it goes on, and is kept."
        " Log in again to read it."
    )
    session.watch_of(page).forgive_console_errors("401")  # the refusals it met
    gate.open()
    wait_for_saved_text("Hello again")  # the reply went on, and was kept


def test_logging_out_in_another_tab_ends_the_reply_stream_and_says_so(
    start_server, open_browsing, stub, alice, new_gate
):
    server = start_server(CHATSITE_SESSION_RECHECK_SECONDS="0.1")
    gate = new_gate()
    session = open_browsing(server.url)
    page = reply_held_after_hel(session, stub, alice, gate)

    other_tab = session.new_tab(page)
    other_tab.goto("/")
    other_tab.get_by_role("button", name="Log out").click()
    expect(page.locator("#composer-error")).to_have_text(
        "You are no longer logged in: reload the page to log in again."
    )
    expect(reply_body(page)).to_have_text("Hel")  # the text so far stays
    session.watch_of(page).forgive_console_errors("401")  # the refused reconnect
    gate.open()
    wait_for_saved_text("Hello again")  # the reply went on, and was kept
