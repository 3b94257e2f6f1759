"""The chat page when the connection fails it: a send that cannot leave, and one whose answer
never comes (given up after 30 s, then caught up with the conversation as stored)."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.pages import open_new_chat, send_message, wait_until_final

pytestmark = pytest.mark.browser


def test_a_send_the_server_cannot_receive_says_what_to_do_and_keeps_the_draft(browsing, alice):
    page = browsing.logged_in(alice)
    open_new_chat(page)
    page.context.set_offline(True)

    def catch_up_failed(message: object) -> bool:  # the page's GET after the lost POST
        url = message.location.get("url") or ""
        return "ERR_INTERNET_DISCONNECTED" in message.text and "/messages/" not in url

    with page.expect_console_message(catch_up_failed):
        send_message(page, "Are you there?")
    expect(page.locator("#composer-error")).to_have_text(
        "Could not reach chatsite: check the connection, then try again."
    )
    expect(page.locator("#content")).to_have_value("Are you there?")
    page.context.set_offline(False)
    browsing.watch_of(page).forgive_console_errors("ERR_INTERNET_DISCONNECTED")


@pytest.mark.parametrize("reached", [True, False], ids=["stored", "never-arrived"])
def test_a_send_whose_answer_never_comes_is_given_up_and_caught_up_with(
    browsing, stub, alice, reached
):
    page = browsing.logged_in(alice)
    page.clock.install()  # the page's timers, moved on below instead of waited for
    open_new_chat(page)
    stalled: list = []

    def never_answer(route: object) -> None:
        if reached:
            route.fetch()  # the server stores the message and starts its reply
        stalled.append(route)  # and the page never hears back

    page.route(re.compile(r"/messages/$"), never_answer)
    send_message(page, "Are you there?")
    expect(page.locator("#send")).to_be_disabled()
    if reached:
        page.locator("#content").press_sequentially(" Hello?")  # typed on while waiting
    page.clock.fast_forward("00:31")
    expect(page.locator("#send")).to_be_enabled()

    if reached:  # caught up: the message was stored (its client_id says so), and answered
        wait_until_final(page)
        expect(page.locator(".message.user .body")).to_have_text("Are you there?")
        expect(page.locator("#composer-error")).to_be_hidden()
        expect(page.locator("#content")).to_have_value("Are you there? Hello?")  # kept
        return
    expect(page.locator("#composer-error")).to_have_text(
        "chatsite did not answer in time: check the connection, then try again."
    )
    expect(page.locator("#content")).to_have_value("Are you there?")
    page.unroute(re.compile(r"/messages/$"), never_answer)
    page.locator("#content").press("Enter")  # sent again
    wait_until_final(page)
    expect(page.locator(".message.user")).to_have_count(1)
    assert len(stalled) == 1 and len(stub.requests) == 1
