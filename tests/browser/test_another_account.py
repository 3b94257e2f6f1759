"""The chat page when another account logs in in another tab (without logging out, which
clears drafts): the conversation is not read as deleted, the draft is kept for its owner, and
a reply being written is not marked deleted."""

import pytest
from playwright.sync_api import expect

from tests.browser.pages import (
    gated_stream,
    log_in_in_another_tab,
    open_chat,
    open_new_chat,
    reply_body,
    send_message,
    wait_until_final,
)
from tests.browser.test_resume_in_browser import wait_for_saved_text

pytestmark = pytest.mark.browser

CHARLIE_NOW = (
    "charlie is logged in now, in another tab or window: this conversation is alice's."
    " Log in as alice again, then reload this page."
)


def test_a_draft_is_kept_for_its_owner_when_another_account_logs_in_elsewhere(
    browsing, alice, charlie
):
    page = browsing.logged_in(alice)
    open_new_chat(page)
    chat_url = page.url
    log_in_in_another_tab(browsing, page, "charlie")

    send_message(page, "A long thought")  # refused: charlie's session now
    expect(page.locator("#composer-error")).to_have_text(CHARLIE_NOW)
    expect(page.locator("#content")).to_have_value("A long thought")

    log_in_in_another_tab(browsing, page, "alice")
    open_chat(page, chat_url)  # reloaded, as the page says
    expect(page.locator("#content")).to_have_value("A long thought")  # kept for her
    browsing.watch_of(page).forgive_console_errors("/messages/")


def test_a_reply_being_written_is_not_marked_deleted_when_another_account_logs_in(
    start_server, open_browsing, stub, alice, charlie, new_gate
):
    # Its stream ends with alice's session; its reconnect, with charlie's, finds nothing.
    server = start_server(CHATSITE_SESSION_RECHECK_SECONDS="0.1")
    gate = new_gate()
    session = open_browsing(server.url)
    page = session.logged_in(alice)
    stub.queue(gated_stream(["Hel", "lo again"], [gate, None]))
    open_new_chat(page)
    send_message(page, "Say it")
    expect(reply_body(page)).to_have_text("Hel")

    log_in_in_another_tab(session, page, "charlie")
    reply = wait_until_final(page, "unfollowed")
    expect(reply.locator(".status")).to_have_text("Logged out")
    expect(reply_body(page)).to_have_text("Hel")
    expect(page.locator("#composer-error")).to_have_text(CHARLIE_NOW)
    conversation_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    session.watch_of(page).forgive_console_errors("/stream/")  # its reconnects, refused
    session.watch_of(page).forgive_console_errors(f"/api/conversations/{conversation_id}/")
    gate.open()
    wait_for_saved_text("Hello again")  # the reply went on, and was kept
