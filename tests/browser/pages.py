"""What a person does on chatsite's pages, as small steps the browser tests share."""

import re

from playwright.sync_api import Locator, Page, expect

from tests.stub import Gate, Script, openai_chunk, openai_stream, openai_usage, sse

FORBIDDEN_ELEMENTS = "script, svg, math, iframe, object, embed, video, audio, link, style, form"


def open_new_chat(page: Page) -> None:
    """From any page with the sidebar, start a chat and wait until its script is ready."""
    page.get_by_role("button", name="New chat").first.click()
    expect(page.locator("#chat[data-ready=true]")).to_be_attached()


def open_chat(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#chat[data-ready=true]")).to_be_attached()


def log_in_in_another_tab(
    browsing: object, page: Page, username: str, log_out_first: bool = False
) -> None:
    """`username` logs in in a new tab beside `page`, after logging out there (which clears
    every tab's drafts) or straight over the session `page` has."""
    other = browsing.new_tab(page)
    if log_out_first:
        other.goto("/")
        other.get_by_role("button", name="Log out").click()
    other.goto("/accounts/login/")
    other.get_by_label("Username").fill(username)
    other.get_by_label("Password").fill(f"{username}-password")
    other.get_by_role("button", name="Log in").click()
    expect(other).to_have_url(re.compile(r"/$"))  # a new session, and a new CSRF token
    expect(other.locator(".who")).to_have_text(username)


def send_message(page: Page, text: str) -> None:
    """Type into the composer and press Enter, as a person does, once the page's script is
    ready (an Enter before it only adds a line to the text)."""
    expect(page.locator("#chat[data-ready=true]")).to_be_attached()
    page.locator("#content").fill(text)
    page.locator("#content").press("Enter")


def replies(page: Page) -> Locator:
    return page.locator(".message.assistant")


def last_reply(page: Page) -> Locator:
    return replies(page).last


def reply_body(page: Page) -> Locator:
    return last_reply(page).locator(".body")


def wait_until_final(page: Page, status: str = "complete") -> Locator:
    reply = last_reply(page)
    expect(reply).to_have_attribute("data-status", status)
    return reply


def gated_stream(
    parts: list[str], gates: list[Gate | None], usage: tuple[int, int] = (9, 5)
) -> Script:
    """An OpenAI stream that sends parts[i] and then waits at gates[i] (None: no wait)."""
    steps: list = [openai_chunk("")]
    for part, gate in zip(parts, gates, strict=True):
        steps.append(openai_chunk(part))
        if gate is not None:
            steps.append(gate)
    steps += [openai_chunk(finish_reason="stop"), openai_usage(*usage), sse("[DONE]")]
    return Script(steps=steps)


def chat_with_a_held_reply(
    browsing: object, user: object, stub: object, gate: Gate, text: str, message: str = "Ramble"
) -> Page:
    """`user`'s new chat, `message` sent, its reply showing `text` and then waiting at `gate`:
    a reply still running."""
    stub.queue(gated_stream([text], [gate]))
    page = browsing.logged_in(user)
    open_new_chat(page)
    send_message(page, message)
    expect(reply_body(page)).to_have_text(text)
    return page


def chat_with_alternatives(
    browsing: object, user: object, stub: object, replies: int = 2, *later: Script
) -> Page:
    """`user`'s new chat whose "Hi" has `replies` replies, "First", "Second" and so on, each
    regenerated and complete, the last one shown; `later` queued for what the test sends."""
    texts = ["First", "Second", "Third"][:replies]
    stub.queue(*(openai_stream([text]) for text in texts), *later)
    page = browsing.logged_in(user)
    open_new_chat(page)
    send_message(page, "Hi")
    for text in texts[1:]:
        last_reply(page).get_by_role("button", name="Regenerate").click()
        expect(reply_body(page)).to_have_text(text)
        wait_until_final(page)
    return page


def clipboard_text(page: Page) -> str:
    return page.evaluate("navigator.clipboard.readText()")


def assert_nothing_dangerous_in(page: Page) -> None:
    """No element or attribute in the messages that could run script or fetch a URL."""
    messages = page.locator("#messages")
    expect(messages.locator(FORBIDDEN_ELEMENTS)).to_have_count(0)
    found = messages.evaluate(
        """root => [...root.querySelectorAll('*')].flatMap(e => [...e.attributes]
            .filter(a => a.name.startsWith('on') || a.name === 'style'
                || /^\\s*javascript:/i.test(a.value) || (e.tagName === 'IMG' && a.name === 'src'))
            .map(a => `${e.tagName} ${a.name}=${a.value}`))"""
    )
    assert found == [], "dangerous attributes survived sanitising"


def rename_chat(browsing: object, page: Page, title: str) -> None:
    """Rename the open chat as a person does: Rename, then the new title typed into its prompt
    (which the page's watch answers, as the page opens it on purpose)."""
    browsing.watch_of(page).answer_next_prompt(title)
    page.get_by_role("button", name="Rename").click()
    expect(page.locator("#chat-title")).to_have_text(title)
