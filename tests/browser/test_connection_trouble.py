"""The chat page when the connection fails it: a send that cannot leave, and one whose answer
never comes (given up after 30 s, then caught up with the conversation as stored) or is lost
(caught up at once, or known as sent after a reload); a reply's stream that goes silent
without closing; replies chosen among others that the server does not hear of."""

import re

import pytest
from playwright.sync_api import expect

from conversations.models import Message
from tests.browser.pages import (
    chat_with_alternatives,
    gated_stream,
    last_reply,
    open_chat,
    open_new_chat,
    reply_body,
    send_message,
    wait_until_final,
)
from tests.chats import add_chat
from tests.client import wait_for
from tests.freezing_proxy import FreezingProxy

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


# As Firefox refills a text box on reload, before the page's scripts run.
REFILL_THE_BOX = """new MutationObserver((_, observer) => {
  const box = document.getElementById("content");
  if (box) { box.value = "Only once"; observer.disconnect(); }
}).observe(document, {childList: true, subtree: true});"""


def send_losing_the_answer(page: object, text: str) -> None:
    """Send `text`: the server stores it and starts its reply, but the page never hears back,
    nor from its catch-up after it (the connection stays down); then it is back."""

    def lose_the_answer(route: object) -> None:
        route.fetch()  # the server stores the message and starts its reply
        route.abort()  # the page never hears back

    page.route(re.compile(r"/messages/$"), lose_the_answer)
    page.route(re.compile(r"/api/conversations/[^/]+/$"), lambda route: route.abort())
    with page.expect_event("requestfailed", lambda r: r.method == "GET"):  # the catch-up's
        send_message(page, text)
    expect(page.locator("#composer-error")).to_contain_text("Could not reach chatsite")
    page.unroute(re.compile(r"/messages/$"))
    page.unroute(re.compile(r"/api/conversations/[^/]+/$"))


@pytest.mark.parametrize("refilled", [False, True], ids=["box-empty", "box-refilled"])
def test_a_message_whose_answer_was_lost_is_known_as_sent_after_a_reload(
    browsing, stub, alice, refilled
):
    page = browsing.logged_in(alice)
    open_new_chat(page)
    chat_url = page.url
    send_losing_the_answer(page, "Only once")
    if refilled:
        page.add_init_script(REFILL_THE_BOX)
    open_chat(page, chat_url)  # reloaded, as the person would
    wait_until_final(page)  # the message was stored, and answered
    expect(page.locator(".message.user .body")).to_have_text(["Only once"])
    # Its kept client_id is the stored message's: sent, not a draft to send again.
    expect(page.locator("#content")).to_have_value("")
    assert Message.objects.count() == 2 and len(stub.requests) == 1
    browsing.watch_of(page).forgive_console_errors("ERR_FAILED")


def test_a_message_whose_answer_was_lost_is_shown_as_stored_without_a_reload(browsing, stub, alice):
    page = browsing.logged_in(alice)
    open_new_chat(page)

    def lose_the_answer(route: object) -> None:
        route.fetch()  # the server stores the message and starts its reply
        route.abort()  # the page never hears back

    page.route(re.compile(r"/messages/$"), lose_the_answer)
    send_message(page, "Only once")
    wait_until_final(page)  # caught up: its client_id found stored, its reply followed
    expect(page.locator(".message.user .body")).to_have_text("Only once")
    expect(page.locator("#content")).to_have_value("")  # sent: no draft to send again
    expect(page.locator("#composer-error")).to_be_hidden()
    assert len(stub.requests) == 1
    browsing.watch_of(page).forgive_console_errors("ERR_FAILED")


@pytest.mark.parametrize(
    ("edit", "stored"),
    [(["!", "Backspace"], ["Sent once"]), (["!"], ["Sent once", "Sent once!"])],
    ids=["edited-back", "edited"],
)
def test_a_draft_sent_again_after_a_lost_answer_is_one_message_unless_its_text_changed(
    browsing, stub, alice, edit, stored
):
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_losing_the_answer(page, "Sent once")
    answered = Message.objects.filter(status="complete", role="assistant")
    wait_for(answered.exists, "the first reply stored")  # a new message is no 409 then
    box = page.locator("#content")
    box.press("End")
    for key in edit:  # typed, as a person does: each key is an input event
        box.press(key)
    box.press("Enter")
    expect(page.locator(".message.user .body")).to_have_text(stored)
    wait_until_final(page)
    assert list(Message.objects.filter(role="user").values_list("content", flat=True)) == stored
    assert len(stub.requests) == len(stored)
    expect(page.locator("#composer-error")).to_be_hidden()
    browsing.watch_of(page).forgive_console_errors("ERR_FAILED")


def test_a_regenerate_whose_answer_is_lost_is_not_taken_for_a_message_sent(browsing, stub, alice):
    # Its messages came from the API, without a client_id: none of them is a lost send.
    chat = add_chat(alice, "From a script")
    page = browsing.logged_in(alice)
    open_chat(page, f"/c/{chat.pk}/")
    page.route(re.compile(r"/regenerate/$"), lambda route: route.abort())  # never arrives
    with page.expect_response(re.compile(r"/api/conversations/[^/]+/$")):  # the catch-up
        last_reply(page).get_by_role("button", name="Regenerate").click()
    expect(page.locator("#composer-error")).to_have_text(
        "Could not reach chatsite: check the connection, then try again."
    )
    expect(page.locator(".message.assistant")).to_have_count(1)
    assert stub.requests == []
    browsing.watch_of(page).forgive_console_errors("/regenerate/")


def test_a_stream_gone_silent_without_closing_is_followed_again(
    start_server, open_browsing, stub, alice, new_gate
):
    # Pings every 0.2 s while the model is silent: hearing nothing for longer, the page
    # knows its connection is dead, though it never closed, and follows the reply again.
    server = start_server(CHATSITE_HEARTBEAT_SECONDS="0.2")
    proxy = FreezingProxy(server.url)
    gate, later = new_gate(), new_gate()
    stub.queue(gated_stream(["Hel", "lo, ", "still here"], [gate, later, None]))
    try:
        page = open_browsing(proxy.url).logged_in(alice)
        open_new_chat(page)
        streams: list[str] = []
        page.on("request", lambda r: "/stream/" in r.url and streams.append(r.url))
        send_message(page, "Are you there?")
        expect(reply_body(page)).to_have_text("Hel")
        # A silent model is not a silent connection: its pings keep the page's stream.
        page.wait_for_timeout(4000)  # past the silence the page allows (3 pings, 2 s)
        assert len(streams) == 1
        assert proxy.silence_streams() == 1
        gate.open()  # sent on the dead connection: it never reaches the page
        expect(reply_body(page)).to_have_text("Hello, ")  # from a new one, from where it was
        assert len(streams) == 2 and re.search(r"last_event_id=[1-9]", streams[1])
        later.open()
        wait_until_final(page)
        expect(reply_body(page)).to_have_text("Hello, still here")
    finally:
        proxy.close()


@pytest.mark.parametrize("last_one", ["lost", "taken"])
def test_replies_chosen_while_the_server_cannot_hear_them_go_back_and_say_why(
    browsing, stub, alice, last_one
):
    page = chat_with_alternatives(browsing, alice, stub, 3)
    held = []
    page.route(re.compile(r"/choose/$"), lambda route: held.append(route))  # they wait here
    browsing.watch_of(page).forgive_console_errors("/choose/")

    for arrow, shown in [("Previous", "Second"), ("Previous", "First"), ("Next", "Second")]:
        last_reply(page).get_by_role("button", name=f"{arrow} reply").click()
        expect(reply_body(page)).to_have_text(shown)  # at once
    for answered in range(3):  # one after another: the first two lost
        while len(held) <= answered:
            page.wait_for_timeout(50)  # until it is on its way (a wait, not a timing check)
        if answered < 2 or last_one == "lost":
            held[answered].abort()
        else:
            held[answered].continue_()
    expect(page.locator("#composer-error")).to_have_text(
        "Could not reach chatsite: check the connection, then try again."
    )
    # Shown is the reply the conversation goes on from, as the server has it.
    shown, count = ("Third", "3 of 3") if last_one == "lost" else ("Second", "2 of 3")
    expect(reply_body(page)).to_have_text(shown)
    expect(last_reply(page).locator(".alternatives")).to_contain_text(count)
    chosen = Message.objects.filter(chosen_at__isnull=False)
    assert [m.content for m in chosen] == ([] if last_one == "lost" else ["Second"])
