"""What keyboards and screen readers meet on the chat page: focus that stays in reach, and the
end of each reply said once in a status line."""

import re

import pytest
from playwright.sync_api import expect

from conversations.models import Conversation
from tests.browser.pages import (
    chat_with_alternatives,
    gated_stream,
    last_reply,
    open_new_chat,
    replies,
    reply_body,
    send_message,
    wait_until_final,
)
from tests.stub import openai_stream

pytestmark = pytest.mark.browser


def test_keyboard_focus_stays_in_reach_after_stop_regenerate_and_switching_replies(
    browsing, stub, alice, new_gate
):
    gate = new_gate()
    stub.queue(gated_stream(["First"], [gate]), openai_stream(["Second"]), openai_stream(["Third"]))
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, "Hi")
    expect(reply_body(page)).to_have_text("First")
    page.locator("#stop").focus()
    page.keyboard.press("Enter")
    wait_until_final(page, "stopped")
    expect(page.locator("#content")).to_be_focused()
    last_reply(page).get_by_role("button", name="Regenerate").focus()
    page.keyboard.press("Enter")
    wait_until_final(page)
    expect(page.locator("#content")).to_be_focused()
    last_reply(page).get_by_role("button", name="Previous reply").focus()
    page.keyboard.press("Enter")
    expect(last_reply(page).locator(".alternatives")).to_contain_text("1 of 2")
    # At the first reply, focus moves to the arrow that still leads somewhere.
    expect(last_reply(page).get_by_role("button", name="Next reply")).to_be_focused()

    # The model is sent the reply shown, which stays shown.
    send_message(page, "And then?")
    wait_until_final(page)
    expect(page.locator(".alternatives")).to_contain_text("1 of 2")
    assert stub.requests[-1].json["messages"][1] == {"role": "assistant", "content": "First"}


def test_focus_stays_where_it_was_when_the_page_is_shown_again(browsing, stub, alice):
    page = chat_with_alternatives(browsing, alice, stub)
    last_reply(page).get_by_role("button", name="Previous reply").focus()
    # Meanwhile, in another window: a message and its answer.
    chat = Conversation.objects.get()
    asked = chat.messages.create(role="user", status="complete", content="From elsewhere")
    chat.messages.create(role="assistant", status="complete", content="Yes", parent=asked)

    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")  # in front again
    expect(page.locator(".message.user .body")).to_have_text(["Hi", "From elsewhere"])
    expect(replies(page).first.get_by_role("button", name="Previous reply")).to_be_focused()


def test_a_reply_stopped_before_any_text_says_so_and_the_end_is_announced_once(
    browsing, stub, alice, new_gate
):
    gate = new_gate()
    stub.queue(gated_stream([""], [gate]))
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, "Never mind")
    expect(last_reply(page)).to_have_attribute("data-status", "pending")
    page.locator("#stop").click()
    reply = wait_until_final(page, "stopped")
    expect(reply.locator(".reply-notice")).to_have_text("Stopped before the model wrote anything.")
    # Screen readers hear the end in one status line, not the redrawn list.
    expect(page.locator("#announcer")).to_have_text("Stopped before the model wrote anything.")
    expect(page.locator("#messages")).not_to_have_attribute("aria-live", "polite")


def test_keyboard_focus_goes_to_the_text_box_when_its_button_goes(browsing, stub, alice, new_gate):
    gate = new_gate()
    stub.queue(gated_stream(["Hel", "lo"], [gate, None]))
    page = browsing.logged_in(alice)
    open_new_chat(page)
    page.locator("#content").fill("Hi")
    page.locator("#send").click()  # then disabled while the reply runs
    expect(reply_body(page)).to_have_text("Hel")
    expect(page.locator("#content")).to_be_focused()
    page.locator("#stop").focus()
    gate.open()  # the reply ends by itself: Stop hides
    wait_until_final(page)
    expect(page.locator("#content")).to_be_focused()


def test_each_reply_that_ends_is_announced_even_in_the_same_words(browsing, stub, alice):
    page = browsing.logged_in(alice)
    open_new_chat(page)
    announced = "document.getElementById('announcer').textContent === %r"
    for text, said in (("One", "The reply is complete."), ("Two", "The reply is complete.\u00a0")):
        stub.queue(openai_stream([text]))
        send_message(page, f"Say {text}")
        expect(reply_body(page)).to_have_text(text)
        wait_until_final(page)
        # Changed text (a no-break space), or a screen reader stays silent the second time.
        page.wait_for_function(announced % said)


def test_focus_moved_elsewhere_while_a_regenerate_is_on_its_way_stays_there(browsing, stub, alice):
    stub.queue(openai_stream(["First"]), openai_stream(["Second"]))
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, "Hi")
    wait_until_final(page)
    held = []
    page.route(re.compile(r"/regenerate/$"), lambda route: held.append(route))
    last_reply(page).get_by_role("button", name="Regenerate").click()
    while not held:
        page.wait_for_timeout(50)  # the request is on its way (a wait, not a timing check)
    search = page.get_by_label("Search conversations")
    search.focus()  # the person moves on meanwhile
    held[0].continue_()
    expect(reply_body(page)).to_have_text("Second")
    wait_until_final(page)
    expect(search).to_be_focused()
