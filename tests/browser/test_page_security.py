"""Every HTML page carries a strict Content-Security-Policy that the browser enforces, and one
user's chat is simply not found for another."""

import uuid
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin

import pytest
from playwright.sync_api import APIResponse, Page, Response, expect

from tests.browser.pages import open_new_chat, reply_body, send_message, wait_until_final
from tests.stub import openai_stream

pytestmark = pytest.mark.browser

MAX_PAGES_PER_USER = 40


def policy_of(response: Response) -> dict[str, set[str]]:
    header = response.headers.get("content-security-policy")
    assert header, f"no Content-Security-Policy on {response.url}"
    parts = (part.split() for part in header.split(";") if part.strip())
    return {name: set(values) for name, *values in parts}


class MarkupCheck(HTMLParser):
    """What the server's HTML asks for that a strict policy forbids."""

    def __init__(self, origin: str, nonce: str | None) -> None:
        super().__init__()
        self.origin, self.nonce = origin, nonce
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.problems.append(f"<{tag} {name}={value!r}>")
        if tag != "script":
            return
        src = names.get("src")
        if src is None and names.get("type") != "application/json":
            self.problems.append("an inline <script>")
        if src is not None and urljoin(self.origin + "/", src).split("/")[2] != self.host:
            self.problems.append(f"a script from {src}")
        if src is not None and names.get("nonce") not in (None, self.nonce):
            self.problems.append(f"a script with a wrong nonce: {src}")

    @property
    def host(self) -> str:
        return self.origin.split("/")[2]


def assert_strict_csp(response: APIResponse | Response, html: str) -> None:
    """The header is strict, and the page's own markup needs nothing it forbids."""
    url = response.url
    policy = policy_of(response)
    # Django names a nonce only when the page used one (a page without scripts has none).
    nonces = {value for value in policy["script-src"] if value.startswith("'nonce-")}
    assert len(nonces) <= 1 and policy["script-src"] == {"'self'", *nonces}, url
    assert policy["object-src"] == {"'none'"}, url
    assert policy["base-uri"] == {"'none'"}, url
    assert policy["frame-ancestors"] == {"'none'"}, url
    assert policy["img-src"] == {"'self'", "data:"}, url
    assert policy["default-src"] == {"'self'"}, url
    assert not [value for values in policy.values() for value in values if "unsafe" in value], url

    nonce = next(iter(nonces))[len("'nonce-") : -1] if nonces else None
    check = MarkupCheck(url.split("/", 3)[0] + "//" + url.split("/")[2], nonce)
    check.feed(html)
    assert check.problems == [], f"{url} needs what its policy forbids"


def crawl(page: Page, origin: str, start: str) -> list[str]:
    """Visit every page reachable by links from `start` (no query strings), checking each."""
    queue, seen = [start], {start}
    checked = []
    while queue and len(checked) < MAX_PAGES_PER_USER:
        path = queue.pop(0)
        fetched = page.request.get(path)
        assert fetched.status < 500, f"{path}: HTTP {fetched.status}"
        if not fetched.headers.get("content-type", "").startswith("text/html"):
            continue  # not a page (say, the API schema, a download)
        assert_strict_csp(fetched, fetched.text())  # error pages (403 to staff) included
        checked.append(path)
        if fetched.status != 200:
            continue
        page.goto(path)  # the watch sees any violation the browser reports
        for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)"):
            link = urldefrag(href).url
            if not link.startswith(origin + "/") or "?" in link or "/static/" in link:
                continue
            link = link[len(origin) :]
            if link not in seen:
                seen.add(link)
                queue.append(link)
    return checked


def test_every_page_sends_a_strict_csp(browsing, stub, alice, bob):
    stub.queue(openai_stream(["A reply with `code`."]))
    anonymous = browsing.new_page()
    for path in ("/accounts/login/", "/admin/login/"):
        response = anonymous.goto(path)
        assert_strict_csp(response, response.text())

    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, "Hello")
    wait_until_final(page)
    first, second = (policy_of(page.goto(page.url))["script-src"] for _ in range(2))
    assert first != second and len(first) == 2, "a fresh nonce for every response"
    checked = crawl(page, browsing.origin, "/")
    print("checked as user:", checked)
    assert any(path.startswith("/c/") for path in checked), checked
    missing_path = f"/c/{uuid.uuid4()}/"
    missing = page.goto(missing_path)
    assert missing.status == 404
    assert_strict_csp(missing, missing.text())
    browsing.watch_of(page).forgive_console_errors(missing_path)

    staff = browsing.logged_in(bob)
    checked = crawl(staff, browsing.origin, "/admin/")
    print("checked as staff:", checked)
    assert "/admin/conversations/conversation/" in checked, checked
    assert "/admin/conversations/message/" in checked, checked


def test_the_browser_enforces_the_policy(browsing, stub, alice):
    stub.queue(openai_stream(["Hi."]))
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, "Hello")
    wait_until_final(page)

    # Markup that slipped past every other defence still cannot run or load anything.
    page.evaluate(
        """() => {
            document.body.insertAdjacentHTML("beforeend",
                '<img src="data:," onerror="window.ranHandler = true">' +
                '<a id="js-url" href="javascript:window.ranUrl = true">x</a>');
            const script = document.createElement("script");
            script.textContent = "window.ranScript = true";
            document.body.append(script);
        }"""
    )
    page.locator("#js-url").click()
    watch = browsing.watch_of(page)
    page.wait_for_function("() => document.querySelector('img[src=\"data:,\"]').complete")
    expect(page.locator("#js-url")).to_be_attached()
    ran = page.evaluate("[window.ranHandler, window.ranScript, window.ranUrl]")
    assert ran == [None, None, None]
    violations = [error for error in watch.console_errors if "Content Security Policy" in error]
    assert len(violations) >= 3, watch.console_errors
    watch.forgive_console_errors("Content Security Policy")


def test_a_second_user_cannot_open_the_first_users_chat(browsing, stub, alice, charlie):
    stub.queue(openai_stream(["Kept between us."]))
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, "alice's secret plan")
    wait_until_final(page)
    chat_url = page.url
    reply_id = page.locator(".message.assistant").get_attribute("data-message-id")

    intruder = browsing.logged_in(charlie)
    expect(intruder.locator("#conversation-list")).not_to_contain_text("secret plan")
    response = intruder.goto(chat_url)
    assert response.status == 404
    expect(intruder.get_by_role("heading", name="Not found")).to_be_visible()
    expect(intruder.locator("body")).not_to_contain_text("secret plan")
    conversation_id = chat_url.rstrip("/").rsplit("/", 1)[-1]
    for path in (f"/api/conversations/{conversation_id}/", f"/api/messages/{reply_id}/stream/"):
        assert intruder.request.get(path).status == 404, path
    browsing.watch_of(intruder).forgive_console_errors(chat_url.removeprefix(browsing.origin))

    expect(reply_body(page)).to_have_text("Kept between us.")  # still alice's


def test_api_docs_run_swagger_ui_under_the_policy(browsing):
    page = browsing.new_page()
    response = page.goto("/api/docs/")
    assert_strict_csp(response, response.text())
    docs = page.locator(".swagger-ui")
    expect(docs.locator(".opblock").first).to_be_visible()
    expect(docs).to_contain_text("/api/conversations/{conversation_id}/messages/")
    expect(docs).to_contain_text("/api/messages/{message_id}/stream/")
    # Leaving the page clean (no CSP violation, nothing fetched elsewhere) is checked on close.
