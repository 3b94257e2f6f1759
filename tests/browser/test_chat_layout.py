"""The page around the chat: the conversation sidebar, light and dark themes, a phone screen."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from conversations.models import Conversation
from conversations.views import SIDEBAR_SIZE
from tests.browser.pages import (
    open_chat,
    open_new_chat,
    reply_body,
    send_message,
    wait_until_final,
)
from tests.chats import dated_chats
from tests.stub import openai_stream

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
WIDE_REPLY = (
    "| Column one | Column two | Column three | Column four | Column five |\n"
    "|---|---|---|---|---|\n| a | b | c | d | e |\n\n"
    "```python\nprint('"
    + "a very long line of code that must scroll inside its block " * 3
    + "')\n```\n"
)


def conversation(owner: object, title: str, minutes_ago: int) -> Conversation:
    updated = timezone.now() - timedelta(minutes=minutes_ago)
    return Conversation.objects.create(
        owner=owner, title=title, model="openai:stub-model", updated_at=updated
    )


def sidebar_titles(page: object) -> object:
    return page.locator("#conversation-list li[data-conversation-id]:visible")


def test_sidebar_lists_newest_first_and_finds_titles(browsing, stub, alice, charlie):
    alpha = conversation(alice, "Alpha notes", minutes_ago=30)
    conversation(alice, "Beta plan", minutes_ago=20)
    conversation(alice, "Gamma ideas", minutes_ago=10)
    conversation(charlie, "Alpha secret of charlie", minutes_ago=1)
    page = browsing.logged_in(alice)

    expect(sidebar_titles(page)).to_have_text(["Gamma ideas", "Beta plan", "Alpha notes"])
    search = page.get_by_label("Search conversations")
    search.fill("BETA")
    expect(sidebar_titles(page)).to_have_text(["Beta plan"])
    with page.expect_response(lambda r: "q=alpha" in r.url):  # charlie's stays out
        search.fill("alpha")
    expect(sidebar_titles(page)).to_have_text(["Alpha notes"])
    search.fill("nothing like this")
    expect(sidebar_titles(page)).to_have_count(0)
    expect(page.get_by_text("No conversation matches.")).to_be_visible()
    search.press("Escape")
    expect(sidebar_titles(page)).to_have_count(3)

    # A new message makes a conversation the newest, on the page and after a reload.
    stub.queue(openai_stream(["Noted."]))
    page.get_by_role("link", name="Alpha notes").click()
    expect(page).to_have_url(f"{browsing.origin}/c/{alpha.id}/")
    send_message(page, "One more note")
    expect(sidebar_titles(page)).to_have_text(["Alpha notes", "Gamma ideas", "Beta plan"])
    wait_until_final(page)
    page.reload()
    expect(sidebar_titles(page)).to_have_text(["Alpha notes", "Gamma ideas", "Beta plan"])
    expect(page.locator("#conversation-list li.current")).to_have_text("Alpha notes")


def test_search_finds_conversations_by_what_was_said_in_them(browsing, alice, charlie):
    trip = conversation(alice, "Trip plans", minutes_ago=30)
    trip.messages.create(role="user", status="complete", content="Pack the zebra costume")
    conversation(alice, "Groceries", minutes_ago=20)
    conversation(alice, "Zebra facts", minutes_ago=10)
    secret = conversation(charlie, "Charlie's notes", minutes_ago=1)
    secret.messages.create(role="user", status="complete", content="zebra crossing")
    page = browsing.logged_in(alice)
    expect(sidebar_titles(page)).to_have_count(3)

    # A title matches at once; a message once the server has answered; charlie's never.
    search = page.get_by_label("Search conversations")
    search.fill("ZEBRA")
    expect(sidebar_titles(page)).to_have_text(["Zebra facts", "Trip plans"])
    search.fill("costume")
    expect(sidebar_titles(page)).to_have_text(["Trip plans"])
    with page.expect_response(lambda r: "q=crossing" in r.url):
        search.fill("crossing")
    expect(page.get_by_text("No conversation matches.")).to_be_visible()
    expect(sidebar_titles(page)).to_have_count(0)
    search.press("Escape")
    expect(sidebar_titles(page)).to_have_text(["Zebra facts", "Groceries", "Trip plans"])


def background_of(page: object, selector: str) -> str:
    return page.locator(selector).first.evaluate("e => getComputedStyle(e).backgroundColor")


def color_of(page: object, selector: str) -> str:
    return page.locator(selector).first.evaluate("e => getComputedStyle(e).color")


def test_theme_follows_the_system_setting(browsing, stub, alice):
    stub.queue(openai_stream(["```python\n", "def dark(): pass\n", "```\n"]))
    page = browsing.logged_in(alice, color_scheme="light")
    open_new_chat(page)
    send_message(page, "Code please")
    wait_until_final(page)
    light = {
        "page": background_of(page, "body"),
        "text": color_of(page, "body"),
        "keyword": color_of(page, ".hljs-keyword"),
    }

    page.emulate_media(color_scheme="dark")
    dark = {
        "page": background_of(page, "body"),
        "text": color_of(page, "body"),
        "keyword": color_of(page, ".hljs-keyword"),
    }
    assert light["page"] == "rgb(255, 255, 255)"
    assert dark["page"] == "rgb(21, 23, 26)"
    assert light["text"] != dark["text"]
    assert light["keyword"] != dark["keyword"], "code colours must follow the theme too"


def assert_fits_the_screen(page: object) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the screen"


def test_chat_works_on_a_phone_sized_screen(browsing, stub, alice):
    stub.queue(openai_stream(["Here:\n\n", WIDE_REPLY]))
    page = browsing.logged_in(alice, viewport=PHONE, is_mobile=True, has_touch=True)
    expect(page.get_by_role("button", name="New chat").first).to_be_in_viewport()
    assert_fits_the_screen(page)
    open_new_chat(page)

    # On a phone the chat has the screen; the conversation list opens on demand.
    expect(page.locator("#sidebar")).to_be_hidden()
    page.get_by_role("button", name="Chats").tap()
    expect(page.locator("#sidebar")).to_be_visible()
    expect(page.get_by_role("button", name="Chats")).to_have_attribute("aria-expanded", "true")
    page.get_by_role("button", name="Chats").tap()
    expect(page.locator("#sidebar")).to_be_hidden()

    page.locator("#content").fill("Show me something wide")
    page.locator("#send").tap()  # on a phone, Enter starts a new line
    wait_until_final(page)
    expect(reply_body(page).locator("table")).to_be_visible()
    assert_fits_the_screen(page)
    for control in ("#content", "#send", "#model"):
        expect(page.locator(control)).to_be_in_viewport()
        box = page.locator(control).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], control
    code = reply_body(page).locator("pre code")
    assert code.evaluate("e => e.scrollWidth > e.clientWidth"), "long code scrolls in its block"
    table = reply_body(page).locator("table")  # words stay whole; the table scrolls instead
    assert table.evaluate("e => e.scrollWidth > e.clientWidth"), "a wide table scrolls in place"
    open_chat(page, page.url)
    assert_fits_the_screen(page)


def test_a_staff_users_header_and_chat_controls_fit_a_phone_screen(browsing, bob):
    """Staff have one more link in the header (Admin); the chat head has Rename, Delete and
    the exports: on a phone they wrap rather than run off the screen."""
    page = browsing.logged_in(bob, viewport=PHONE, is_mobile=True, has_touch=True)
    open_new_chat(page)
    assert_fits_the_screen(page)
    controls = [
        page.get_by_role("button", name="Log out"),
        page.get_by_role("link", name="Admin"),
        page.get_by_role("button", name="Rename"),
        page.get_by_role("button", name="Delete"),
        page.get_by_role("link", name="Markdown"),
        page.get_by_role("link", name="JSON"),
    ]
    for control in controls:
        expect(control).to_be_in_viewport()
        box = control.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], control


def test_a_new_chat_with_an_unsent_draft_stays_in_the_sidebar(browsing, stub, alice):
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, "A chat begun")
    wait_until_final(page)
    begun = page.url
    open_new_chat(page)
    page.locator("#content").fill("Half a thought")
    open_new_chat(page)  # another, left without a word

    open_chat(page, begun)
    drafted = page.locator("#conversation-list li", has_text="New chat")
    expect(drafted).to_have_count(1)  # the one with the draft, not the one left empty
    drafted.get_by_role("link").click()
    expect(page.locator("#chat[data-ready=true]")).to_be_attached()
    expect(page.locator("#content")).to_have_value("Half a thought")


def test_a_drafted_chat_deleted_elsewhere_or_of_another_account_is_not_listed(
    browsing, alice, charlie, client_for
):
    page = browsing.logged_in(alice)
    open_new_chat(page)
    drafted = page.url.rstrip("/").rsplit("/", 1)[1]
    page.locator("#content").fill("Half a thought")
    open_new_chat(page)
    kept = page.url.rstrip("/").rsplit("/", 1)[1]
    page.locator("#content").fill("Another")
    page.goto("/")
    expect(page.locator("#conversation-list li", has_text="New chat")).to_have_count(2)

    client_for(alice).http.delete(f"/api/conversations/{drafted}/")  # by an API client
    with page.expect_response(lambda r: drafted in r.url and r.status == 404):
        page.reload()
    expect(page.locator("#conversation-list li", has_text="New chat")).to_have_count(1)
    browsing.watch_of(page).forgive_console_errors(f"/api/conversations/{drafted}/")

    page.goto("/accounts/login/")  # charlie, in the same tab, without logging alice out
    page.get_by_label("Username").fill("charlie")
    page.get_by_label("Password").fill("charlie-password")
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".who")).to_have_text("charlie")
    page.wait_for_load_state("networkidle")  # the sidebar's lookups, if any, are done
    expect(page.locator("#conversation-list li[data-conversation-id]")).to_have_count(0)
    assert not [url for url in asked if kept in url]  # alice's drafted chat: not looked up
    assert len(page.evaluate("Object.keys(sessionStorage)")) == 1  # and kept for her


def test_without_javascript_the_chat_says_it_needs_it(browsing, alice):
    page = browsing.logged_in(alice)
    open_new_chat(page)
    expect(page.locator("#needs-script")).to_be_hidden()  # with it, not a word
    without = browsing.new_page(java_script_enabled=False)
    without.context.add_cookies(page.context.cookies())
    without.goto(page.url)
    expect(without.locator("#needs-script")).to_be_visible()


def test_older_conversations_load_on_demand_and_search_finds_them(browsing, alice, charlie):
    titles = [f"Chat {n:03}" for n in range(SIDEBAR_SIZE + 4)] + ['<img src=x onerror="alert(1)">']
    dated_chats(alice, titles)
    conversation(alice, "", minutes_ago=60 * 24 * len(titles))  # a new chat left empty, oldest
    conversation(charlie, "Chat 103 of charlie", minutes_ago=1)
    page = browsing.logged_in(alice)
    expect(sidebar_titles(page)).to_have_count(SIDEBAR_SIZE)

    # Typing asks the server for titles not listed yet; only alice's come back.
    search = page.get_by_label("Search conversations")
    search.fill("Chat 103")
    expect(sidebar_titles(page)).to_have_text(["Chat 103"])
    search.press("Escape")
    expect(sidebar_titles(page)).to_have_count(SIDEBAR_SIZE + 1)

    older = page.get_by_role("button", name="Show older conversations")
    older.click()
    expect(sidebar_titles(page)).to_have_text(titles)  # every one, newest first
    expect(older).to_be_hidden()
    expect(page.locator("#conversation-list img")).to_have_count(0)  # a title is only text


def test_an_old_conversation_that_gets_a_message_stays_first_as_older_ones_load(
    browsing, stub, alice
):
    titles = [f"Chat {n:03}" for n in range(SIDEBAR_SIZE + 5)]
    chats = dated_chats(alice, titles)
    page = browsing.logged_in(alice)
    oldest = chats[-1]  # listed last, below the 100 most recent, as the open one
    open_chat(page, f"{browsing.origin}/c/{oldest.id}/")
    expect(sidebar_titles(page)).to_have_count(SIDEBAR_SIZE + 1)

    stub.queue(openai_stream(["Noted."]))
    send_message(page, "Back to this one")
    wait_until_final(page)
    page.get_by_role("button", name="Show older conversations").click()
    # Those loaded go below it: it is the newest now, though the page had it as the oldest.
    expect(sidebar_titles(page)).to_have_text([titles[-1], *titles[:-1]])


def test_a_search_the_server_cannot_answer_says_only_titles_were_searched(browsing, alice):
    conversation(alice, "Groceries", minutes_ago=1)
    page = browsing.logged_in(alice)
    page.route(re.compile(r"/api/conversations/\?.*q="), lambda route: route.abort())
    with page.expect_event("requestfailed"):
        page.get_by_label("Search conversations").fill("zebra")
    expect(page.locator("#no-match")).to_have_text(
        "No title matches, and the messages could not be searched: check the connection."
    )
    browsing.watch_of(page).forgive_console_errors("q=zebra")
