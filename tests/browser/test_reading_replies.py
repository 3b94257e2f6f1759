"""Reading replies on the chat page: raw HTML shown as text keeps its lines, the end of each
reply said with why, answers an API request brought labelled as such, Escape that stops a
reply from anywhere on the page, the sidebar that follows what changed a conversation, and
dates that say their zone, messages' times among them."""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from conversations.models import Conversation
from conversations.views import SIDEBAR_SIZE
from tests.browser.pages import (
    chat_with_a_held_reply,
    last_reply,
    open_chat,
    open_new_chat,
    rename_chat,
    replies,
    reply_body,
    send_message,
    wait_until_final,
)
from tests.chats import add_chat, dated_chats
from tests.replies import HISTORY, MODEL, complete_over_v1
from tests.stub import json_error, openai_stream

pytestmark = pytest.mark.browser

HTML_BLOCK = "<div>\n  hello\n  world\n</div>"


def sidebar_titles(page: Page) -> object:
    return page.locator("#conversation-list li[data-conversation-id]:visible")


def older_chat(owner: object, title: str, minutes_ago: int) -> Conversation:
    """A conversation with one message and its reply, last changed `minutes_ago`."""
    chat = add_chat(owner, title)
    updated = timezone.now() - timedelta(minutes=minutes_ago)
    Conversation.objects.filter(pk=chat.pk).update(updated_at=updated)
    return chat


def stop_requests(page: Page) -> list[str]:
    """The Stop requests the page sends from now on."""
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/stop/") else None)
    return sent


# --- raw HTML in a reply ----------------------------------------------------------------------
def shows_the_block_as_text(page: Page) -> None:
    """HTML_BLOCK laid out as written, line by line, as text (no element of the model's), and
    the paragraph after it apart."""
    paragraphs = reply_body(page).locator(":scope > p")
    expect(paragraphs).to_have_count(2)
    assert paragraphs.first.inner_text() == HTML_BLOCK
    expect(paragraphs.last).to_have_text("next")
    expect(reply_body(page).locator("div")).to_have_count(0)


def test_a_block_of_html_in_a_reply_is_a_paragraph_of_text_with_its_line_breaks(
    browsing, stub, alice
):
    stub.queue(openai_stream(["<div>\n  hel", "lo\n  world\n</div>\n\n", "next"]))
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, "Show me some HTML")
    wait_until_final(page)
    shows_the_block_as_text(page)
    page.reload()  # a whole render, not the live one
    wait_until_final(page)
    shows_the_block_as_text(page)


def test_html_inside_a_sentence_stays_inline_text(browsing, stub, alice):
    stub.queue(openai_stream(["A <b>bold</b> claim", " and <i>more</i>."]))
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, "Say it with tags")
    wait_until_final(page)
    paragraphs = reply_body(page).locator(":scope > p")
    expect(paragraphs).to_have_count(1)
    assert paragraphs.first.inner_text() == "A <b>bold</b> claim and <i>more</i>."
    expect(reply_body(page).locator("b, i, .plain")).to_have_count(0)


# --- what a screen reader hears at a reply's end ----------------------------------------------
def announced_end(page: Page, status: str) -> None:
    """The end is said once, as the notice the reply shows: it says how it ended, and why
    ("The reply is complete." before "Cut short: …" would contradict it)."""
    reply = wait_until_final(page, status)
    notice = reply.locator(".reply-notice").inner_text()
    assert notice
    expect(page.locator("#announcer")).to_have_text(notice)


def test_a_reply_cut_at_its_length_limit_is_announced_with_why(browsing, stub, alice):
    stub.queue(openai_stream(["Once upon a"], finish_reason="length"))
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, "Tell a long story")
    announced_end(page, "complete")
    expect(page.locator("#announcer")).to_have_text(
        "Cut short: the model reached its length limit."
    )


def test_a_reply_cut_by_a_content_filter_is_announced_with_why(browsing, stub, alice):
    stub.queue(openai_stream(["Well"], finish_reason="content_filter"))
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, "Something filtered")
    announced_end(page, "complete")
    expect(page.locator("#announcer")).to_contain_text("content filter")


def test_a_failed_reply_is_announced_with_its_reason(browsing, stub, alice):
    stub.queue(json_error(400, "This model's maximum context length is 8192 tokens."))
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, "A very long question")
    announced_end(page, "failed")
    expect(page.locator("#announcer")).to_contain_text("maximum context length is 8192 tokens")


def test_a_stopped_reply_is_announced_with_what_was_kept(browsing, stub, alice, new_gate):
    page = chat_with_a_held_reply(browsing, alice, stub, new_gate(), "Half a thought")
    page.locator("#stop").click()
    announced_end(page, "stopped")
    expect(page.locator("#announcer")).to_contain_text("the text up to then is kept")


# --- an answer an API request brought in its history ------------------------------------------
def test_an_answer_an_api_request_brought_is_labelled_as_not_written_here(browsing, stub, alice):
    stub.queue(openai_stream(["Fine."]))
    complete_over_v1(browsing.origin, alice, MODEL, messages=HISTORY)
    conversation = Conversation.objects.get(source=Conversation.Source.API)
    page = browsing.logged_in(alice)
    open_chat(page, f"/c/{conversation.id}/")
    brought, written = replies(page).nth(0), replies(page).nth(1)
    expect(brought.locator(".body")).to_have_text("Hello")
    expect(brought.locator("h2")).to_have_text("An earlier answer the API request brought")
    expect(brought.locator(".usage")).to_have_text(
        "An earlier answer the API request brought, not generated here"
    )
    # The reply this site generated still names its model.
    expect(written.locator(".body")).to_have_text("Fine.")
    expect(written.locator("h2")).to_have_text(re.compile(r"^\w.* said$"))
    expect(written.locator(".usage")).not_to_contain_text("API request")


# --- Escape stops a running reply -------------------------------------------------------------
def test_escape_pressed_anywhere_on_the_page_stops_the_reply(browsing, stub, alice, new_gate):
    page = chat_with_a_held_reply(browsing, alice, stub, new_gate(), "Going on and on")
    stops = stop_requests(page)
    page.locator("#rename").focus()  # not the message box
    page.keyboard.press("Escape")
    wait_until_final(page, "stopped")
    assert stub.requests[0].wait_disconnected()
    assert len(stops) == 1


def test_escape_in_the_message_box_stops_the_reply_once(browsing, stub, alice, new_gate):
    page = chat_with_a_held_reply(browsing, alice, stub, new_gate(), "Going on")
    stops = stop_requests(page)
    page.locator("#content").press("Escape")
    wait_until_final(page, "stopped")
    assert len(stops) == 1


def test_escape_in_another_text_field_leaves_the_reply_running(browsing, stub, alice, new_gate):
    gate = new_gate()
    page = chat_with_a_held_reply(browsing, alice, stub, gate, "Going on")
    stops = stop_requests(page)

    search = page.get_by_label("Search conversations")
    search.fill("nothing like this")
    search.press("Escape")
    expect(search).to_have_value("")  # the search's own Escape
    page.locator("#system-prompt summary").click()
    page.locator("#system-prompt-text").press("Escape")
    page.locator("#model").press("Escape")

    gate.open()  # the reply ends by itself, as it would have
    wait_until_final(page)
    expect(reply_body(page)).to_have_text("Going on")
    assert stops == []


# --- the sidebar ------------------------------------------------------------------------------
def test_regenerate_rename_and_a_saved_system_prompt_move_the_chat_first_in_the_sidebar(
    browsing, stub, alice
):
    alpha = older_chat(alice, "Alpha notes", minutes_ago=30)
    beta = older_chat(alice, "Beta plan", minutes_ago=20)
    gamma = older_chat(alice, "Gamma ideas", minutes_ago=10)
    page = browsing.logged_in(alice)
    expect(sidebar_titles(page)).to_have_text(["Gamma ideas", "Beta plan", "Alpha notes"])

    stub.queue(openai_stream(["Another answer"]))
    open_chat(page, f"/c/{alpha.id}/")
    last_reply(page).get_by_role("button", name="Regenerate").click()
    expect(sidebar_titles(page)).to_have_text(["Alpha notes", "Gamma ideas", "Beta plan"])
    wait_until_final(page)

    open_chat(page, f"/c/{beta.id}/")
    rename_chat(browsing, page, "Beta, renamed")
    expect(sidebar_titles(page)).to_have_text(["Beta, renamed", "Alpha notes", "Gamma ideas"])

    open_chat(page, f"/c/{gamma.id}/")
    page.locator("#system-prompt summary").click()
    page.locator("#system-prompt-text").fill("Answer briefly.")
    page.locator("#system-prompt").get_by_role("button", name="Save").click()
    expect(page.locator("#system-prompt-saved")).to_have_text("Saved. The next replies follow it.")
    expect(sidebar_titles(page)).to_have_text(["Gamma ideas", "Beta, renamed", "Alpha notes"])

    page.reload()  # the server lists them so too
    expect(sidebar_titles(page)).to_have_text(["Gamma ideas", "Beta, renamed", "Alpha notes"])


def test_each_sidebar_entry_shows_its_whole_title_on_hover(browsing, alice):
    long_title = "A long title about zebras, striped horses and the many other things it lists"
    titles = [f"Chat {n:03}" for n in range(SIDEBAR_SIZE)] + [long_title]
    dated_chats(alice, titles)  # the long one the oldest: not on the page at first
    page = browsing.logged_in(alice)
    link = page.locator("#conversation-list a").first
    expect(link).to_have_attribute("title", "Chat 000")

    # One the search brings in (sidebar.js adds it), whose title the list cuts short.
    page.get_by_label("Search conversations").fill("zebras")
    found = page.get_by_role("link", name=long_title)
    expect(found).to_have_attribute("title", long_title)
    assert found.evaluate("a => a.scrollWidth > a.clientWidth"), "the title fits: not cut"

    # A renamed chat's entry says its new title.
    found.click()
    expect(page.locator("#chat[data-ready=true]")).to_be_attached()
    rename_chat(browsing, page, "Zebras, in short")
    current = page.locator("#conversation-list li.current a")
    expect(current).to_have_attribute("title", "Zebras, in short")


# --- dates ------------------------------------------------------------------------------------
def test_api_key_dates_say_their_time_zone_as_the_usage_page_does(browsing, alice):
    page = browsing.logged_in(alice)
    page.goto("/settings/usage/")
    usage_zone = re.search(r"Today ends at \S+ \S+ (\S+)\.", page.locator("main").inner_text())
    assert usage_zone, "the usage page names its zone"

    page.goto("/settings/keys/")
    page.get_by_label("Name").fill("laptop")
    page.get_by_label("Your password").fill("alice-password")
    page.get_by_role("button", name="Create key").click()
    page.get_by_role("link", name="Revoke…").click()
    page.get_by_role("button", name="Revoke the key").click()
    dated = page.locator("tbody tr").first.locator("td")
    when = r"^(revoked )?\d{4}-\d\d-\d\d \d\d:\d\d "
    zone = re.escape(usage_zone[1])
    expect(dated.nth(2)).to_have_text(re.compile(when + zone + "$"))  # created
    expect(dated.nth(4)).to_have_text(re.compile(when + zone + "$"))  # revoked


def test_each_message_says_when_it_was_sent_in_the_readers_time_zone(browsing, stub, alice):
    chat = add_chat(alice, "Tea")
    chat.messages.update(created_at=datetime(2025, 3, 4, 5, 6, tzinfo=UTC))
    page = browsing.logged_in(alice, timezone_id="Asia/Tokyo", locale="en-GB")
    open_chat(page, f"/c/{chat.id}/")
    # An older message says its day, and its year when not this one's; the whole date on hover.
    older = page.locator("#messages time.sent")
    expect(older).to_have_count(2)  # the question's and its reply's
    for n in range(2):
        expect(older.nth(n)).to_have_text("4 Mar 2025, 14:06")
        expect(older.nth(n)).to_have_attribute("title", "Tuesday, 4 March 2025 at 14:06")
        expect(older.nth(n)).to_have_attribute("datetime", re.compile(r"^2025-03-04T05:06:00"))

    stub.queue(openai_stream(["Green, please."]))
    send_message(page, "Which one?")
    expect(reply_body(page)).to_have_text("Green, please.")  # the last reply is the new one
    wait_until_final(page)
    # Today's say the time alone, in Tokyo's time.
    for role in ("user", "assistant"):
        when = chat.messages.filter(role=role).latest("created_at").created_at
        shown = page.locator(f".message.{role} time.sent").last
        expect(shown).to_have_text(when.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%H:%M"))


def test_todays_message_times_say_their_day_once_midnight_has_passed(browsing, alice):
    tokyo = ZoneInfo("Asia/Tokyo")
    sent = datetime(2026, 5, 1, 23, 58, tzinfo=tokyo)
    chat = add_chat(alice, "Late tea")
    chat.messages.update(created_at=sent)
    page = browsing.logged_in(alice, timezone_id="Asia/Tokyo", locale="en-GB")
    page.clock.install(time=sent + timedelta(minutes=1))
    open_chat(page, f"/c/{chat.id}/")
    shown = page.locator("#messages time.sent")
    expect(shown).to_have_count(2)  # the question's and its reply's
    for n in range(2):
        expect(shown.nth(n)).to_have_text("23:58")

    page.clock.run_for("02:00")  # the page left open past midnight
    for n in range(2):
        expect(shown.nth(n)).to_have_text("1 May, 23:58")
