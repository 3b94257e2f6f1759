"""The chat page beside other windows and quick hands: a double Enter, an input method's
Enter, a conversation deleted, a reply started or chosen elsewhere, a new login in another
tab, a draft left for another page."""

import re

import pytest
from playwright.sync_api import Page, expect

from conversations.models import Conversation, Message
from tests.browser.pages import (
    chat_with_alternatives,
    gated_stream,
    last_reply,
    log_in_in_another_tab,
    open_chat,
    open_new_chat,
    reply_body,
    send_message,
    wait_until_final,
)
from tests.browser.test_resume_in_browser import wait_for_saved_text

pytestmark = pytest.mark.browser

DELETED_MID_REPLY = "Stopped: The conversation was deleted while this reply was being written."
GONE = "This conversation was deleted, in another window or by an API client."


def press_enter(page: Page, **options: object) -> None:
    """An Enter keydown as the browser sends it, with `options` (isComposing, keyCode,
    repeat): several in one call reach the page before any answer can."""
    page.locator("#content").evaluate(
        "(input, options) => input.dispatchEvent(new KeyboardEvent('keydown',"
        " {key: 'Enter', bubbles: true, cancelable: true, ...options}))",
        options,
    )


def reply_held_after_hel(page: Page, stub: object, gate: object) -> None:
    stub.queue(gated_stream(["Hel", "lo again"], [gate, None]))
    open_new_chat(page)
    send_message(page, "Say it")
    expect(reply_body(page)).to_have_text("Hel")


def message_posts(page: Page) -> list[str]:
    """The message POSTs the page sends, from now on."""
    posts: list[str] = []

    def seen(request: object) -> None:
        if request.method == "POST" and "/messages/" in request.url:
            posts.append(request.url)

    page.on("request", seen)
    return posts


def test_enter_pressed_twice_at_once_sends_one_message(browsing, stub, alice):
    page = browsing.logged_in(alice)
    open_new_chat(page)
    posts = message_posts(page)
    page.locator("#content").fill("Once")
    page.locator("#content").evaluate(
        "input => { for (const _ of [1, 2]) input.dispatchEvent(new KeyboardEvent('keydown',"
        " {key: 'Enter', bubbles: true, cancelable: true})); }"
    )
    wait_until_final(page)
    expect(page.locator(".message.user")).to_have_count(1)
    expect(page.locator(".message.assistant")).to_have_count(1)
    expect(page.locator(".alternatives")).to_have_count(0)  # no "1 of 2" of one reply
    assert len(posts) == 1 and len(stub.requests) == 1 and Message.objects.count() == 2


def test_text_typed_while_a_message_is_on_its_way_stays_in_the_box(browsing, stub, alice):
    page = browsing.logged_in(alice)
    open_new_chat(page)
    held = []
    page.route(re.compile(r"/messages/$"), lambda route: held.append(route))  # it waits here
    send_message(page, "First")
    while not held:
        page.wait_for_timeout(50)  # until the POST is on its way (a wait, not a timing check)
    page.locator("#content").fill("Next thought")
    held[0].continue_()
    wait_until_final(page)
    expect(page.locator(".message.user .body")).to_have_text(["First"])
    expect(page.locator("#content")).to_have_value("Next thought")


def test_an_input_methods_enter_or_a_held_enter_sends_nothing(browsing, stub, alice):
    page = browsing.logged_in(alice)
    open_new_chat(page)
    page.locator("#content").fill("你好")  # still being composed
    press_enter(page, isComposing=True)
    press_enter(page, keyCode=229)  # Safari's Enter that ends a composition
    press_enter(page, repeat=True)  # a key held down: only its first keydown counts
    send_message(page, "Final")
    wait_until_final(page)
    expect(page.locator(".message.user .body")).to_have_text(["Final"])


def test_a_conversation_deleted_elsewhere_mid_reply_says_so_here(
    browsing, stub, alice, new_gate, client_for
):
    page = browsing.logged_in(alice)
    reply_held_after_hel(page, stub, new_gate())
    conversation_id = page.url.rstrip("/").split("/")[-1]

    deleted = client_for(alice).http.delete(f"/api/conversations/{conversation_id}/")
    assert deleted.status_code == 204
    reply = wait_until_final(page, "stopped")
    expect(reply.locator(".reply-notice")).to_have_text(DELETED_MID_REPLY)
    expect(reply_body(page)).to_have_text("Hel")

    send_message(page, "Anyone there?")
    expect(page.locator("#composer-error")).to_have_text(GONE)
    expect(page.locator("#content")).to_be_disabled()
    expect(page.locator("#send")).to_be_disabled()
    browsing.watch_of(page).forgive_console_errors("404")


def test_a_stream_coming_back_to_a_deleted_conversation_says_so_instead_of_retrying(
    start_server, open_browsing, stub, alice, new_gate, client_for
):
    # Every stream connection is closed after a fraction of a second, as a proxy might.
    server = start_server(CHATSITE_STREAM_MAX_SECONDS="0.2", CHATSITE_HEARTBEAT_SECONDS="0.05")
    session = open_browsing(server.url)
    page = session.logged_in(alice)
    reply_held_after_hel(page, stub, new_gate())
    conversation_id = page.url.rstrip("/").split("/")[-1]
    refused = []

    def refuse(route: object) -> None:
        refused.append(route.request.url)
        route.abort()

    page.route(re.compile(r"/stream/"), refuse)  # the network is down, for the streams
    while not refused:
        page.wait_for_timeout(50)  # until a reconnect was refused (a wait, not a timing check)
    deleted = client_for(alice, server.url).http.delete(f"/api/conversations/{conversation_id}/")
    assert deleted.status_code == 204
    page.unroute(re.compile(r"/stream/"))  # back: the reply is gone (404)

    reply = wait_until_final(page, "stopped")
    expect(reply.locator(".reply-notice")).to_have_text(DELETED_MID_REPLY)
    expect(page.locator("#composer-error")).to_have_text(GONE)
    expect(page.locator("#content")).to_be_disabled()
    session.watch_of(page).forgive_console_errors("404")
    session.watch_of(page).forgive_console_errors("ERR_FAILED")


def test_a_reply_started_in_another_window_is_followed_here_after_its_409(
    browsing, stub, alice, new_gate
):
    gate = new_gate()
    page = browsing.logged_in(alice)
    open_new_chat(page)
    other = browsing.new_tab(page)
    open_chat(other, page.url)  # drawn before the message below
    stub.queue(gated_stream(["Sec", "ond"], [gate, None]))
    send_message(page, "First")
    expect(reply_body(page)).to_have_text("Sec")

    send_message(other, "From the other window")  # it has not seen "First" or its reply
    expect(other.locator("#composer-error")).to_contain_text("still being generated")
    expect(other.locator(".message.user .body")).to_have_text(["First"])
    expect(other.locator("#chat-title")).to_have_text("First")  # titled by it, as stored
    expect(reply_body(other)).to_have_text("Sec")
    expect(other.locator("#stop")).to_be_visible()  # the error says to stop it: it can
    gate.open()
    wait_until_final(other)
    expect(reply_body(other)).to_have_text("Second")
    expect(other.locator("#composer-error")).to_be_hidden()  # past, with the reply's end
    expect(other.locator("#content")).to_have_value("From the other window")  # kept
    browsing.watch_of(other).forgive_console_errors("409")


def test_a_reply_chosen_in_another_window_is_shown_here_once_this_one_is_in_front_again(
    browsing, stub, alice
):
    page = chat_with_alternatives(browsing, alice, stub)
    other = browsing.new_tab(page)
    open_chat(other, page.url)
    with other.expect_response(re.compile(r"/choose/$")):
        last_reply(other).get_by_role("button", name="Previous reply").click()

    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")  # in front again
    expect(reply_body(page)).to_have_text("First")
    expect(last_reply(page).locator(".alternatives")).to_contain_text("1 of 2")


def test_a_catch_up_read_before_a_choice_was_answered_does_not_undo_it(browsing, stub, alice):
    page = chat_with_alternatives(browsing, alice, stub)
    Conversation.objects.update(title="Renamed")  # shown once the catch-up is drawn
    held = []  # the catch-up's answer, read now and given to the page later
    page.route(re.compile(r"/api/conversations/[^/]+/$"), lambda r: held.append((r, r.fetch())))
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")  # in front again
    while not held:
        page.wait_for_timeout(50)  # until it is read (a wait, not a timing check)
    with page.expect_response(re.compile(r"/choose/$")):
        last_reply(page).get_by_role("button", name="Previous reply").click()

    route, answer = held[0]
    route.fulfill(response=answer)  # as stored before the choice
    expect(page.locator("#chat-title")).to_have_text("Renamed")
    expect(reply_body(page)).to_have_text("First")
    expect(last_reply(page).locator(".alternatives")).to_contain_text("1 of 2")


def test_logging_in_again_in_another_tab_leaves_this_tab_able_to_send(browsing, stub, alice):
    page = browsing.logged_in(alice)
    open_new_chat(page)
    log_in_in_another_tab(browsing, page, "alice", log_out_first=True)

    send_message(page, "Still here")
    wait_until_final(page)
    expect(page.locator("#composer-error")).to_be_hidden()
    expect(reply_body(page)).to_have_text("Hello from the stub.")


def test_another_account_logged_in_elsewhere_is_not_read_as_a_deletion(
    browsing, stub, alice, charlie
):
    page = browsing.logged_in(alice)
    open_new_chat(page)
    log_in_in_another_tab(browsing, page, "charlie", log_out_first=True)

    send_message(page, "Still me?")
    expect(page.locator("#composer-error")).to_have_text(
        "charlie is logged in now, in another tab or window: this conversation is alice's."
        " Log in as alice again, then reload this page."
    )
    expect(page.locator("#send")).to_be_disabled()
    assert not Message.objects.exists()
    browsing.watch_of(page).forgive_console_errors("404")


def test_a_draft_outlives_a_reload_and_goes_once_sent(browsing, stub, alice):
    page = browsing.logged_in(alice)
    open_new_chat(page)
    chat_url = page.url
    page.locator("#content").fill("Half a long thought")
    page.goto("/")  # another page, then back: as after logging in again
    open_chat(page, chat_url)
    expect(page.locator("#content")).to_have_value("Half a long thought")

    send_message(page, "The whole thought")
    wait_until_final(page)
    page.reload()
    expect(page.locator("#chat[data-ready=true]")).to_be_attached()
    expect(page.locator("#content")).to_have_value("")


def test_a_409_for_a_reply_that_ended_meanwhile_leaves_no_error(browsing, stub, alice, new_gate):
    gate = new_gate()
    page = browsing.logged_in(alice)
    open_new_chat(page)
    other = browsing.new_tab(page)
    open_chat(other, page.url)
    stub.queue(gated_stream(["Sec", "ond"], [gate, None]))
    send_message(page, "First")
    expect(reply_body(page)).to_have_text("Sec")

    held = []
    other.route(re.compile(r"/api/conversations/[^/]+/$"), lambda route: held.append(route))
    send_message(other, "From the other window")  # 409, then it asks what there is now
    while not held:
        other.wait_for_timeout(50)  # its catch-up is on its way (a wait, not a timing check)
    expect(other.locator("#composer-error")).to_contain_text("still being generated")
    gate.open()
    wait_until_final(page)  # the reply in the way ends before the catch-up is answered
    held[0].continue_()
    expect(reply_body(other)).to_have_text("Second")
    expect(other.locator("#composer-error")).to_be_hidden()
    browsing.watch_of(other).forgive_console_errors("409")


def test_a_reopened_reply_keeps_its_saved_text_when_deleted_before_it_streams_again(
    browsing, stub, alice, new_gate, client_for
):
    page = browsing.logged_in(alice)
    reply_held_after_hel(page, stub, new_gate())
    wait_for_saved_text("Hel")
    conversation_id = page.url.rstrip("/").split("/")[-1]
    page.route(re.compile(r"/stream/"), lambda route: route.abort())  # streams cannot get through
    open_chat(page, page.url)  # reopened: the text saved so far, nothing streamed yet
    expect(reply_body(page)).to_have_text("Hel")
    client_for(alice).http.delete(f"/api/conversations/{conversation_id}/")
    page.unroute(re.compile(r"/stream/"))  # back: the reply is gone (404)

    reply = wait_until_final(page, "stopped")
    expect(reply.locator(".reply-notice")).to_have_text(DELETED_MID_REPLY)
    expect(reply_body(page)).to_have_text("Hel")  # what the page had, kept
    browsing.watch_of(page).forgive_console_errors("/stream/")
    browsing.watch_of(page).forgive_console_errors(f"/api/conversations/{conversation_id}/")


def test_two_catch_ups_at_once_leave_the_reply_followed_live(browsing, stub, alice, new_gate):
    gate, later = new_gate(), new_gate()
    page = browsing.logged_in(alice)
    open_new_chat(page)
    other = browsing.new_tab(page)
    open_chat(other, page.url)
    stub.queue(gated_stream(["Sec", "ond", "!"], [gate, later, None]))
    send_message(page, "First")
    expect(reply_body(page)).to_have_text("Sec")

    held = []
    other.route(re.compile(r"/api/conversations/[^/]+/$"), lambda route: held.append(route))
    for count in (1, 2):  # two Enters: two 409s, each caught up with (held here)
        send_message(other, "From the other window")
        while len(held) < count:
            other.wait_for_timeout(50)  # its catch-up is on its way (a wait, not a timing check)
    for route in held:
        route.continue_()
    expect(reply_body(other)).to_have_text("Sec")
    gate.open()
    expect(reply_body(other)).to_have_text("Second")  # live, not frozen by the older snapshot
    expect(other.locator(".message.assistant").last).to_have_attribute("data-status", "streaming")
    later.open()
    wait_until_final(other)
    browsing.watch_of(other).forgive_console_errors("409")
