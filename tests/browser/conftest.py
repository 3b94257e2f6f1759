"""Browser fixtures: Debian's headless Chromium driven by Playwright, against the real server.

Every page a test opens records what must never happen on chatsite: a dialog (alert and
friends, which XSS payloads call), a console error (CSP violations are reported there), and a
request to anything but the server under test. A failing test leaves a screenshot of each of
its pages in .test-artifacts/.
"""

import os
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.conftest import service_missing
from tests.servers import ARTIFACTS
from tests.stub import Gate

# Debian's package (Playwright's own browser download is not used).
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
WAIT_MS = 15_000

expect.set_options(timeout=WAIT_MS)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    """Keep each phase's report on the test item, so fixtures can see whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per test module: Playwright's sync API runs an asyncio loop in the test
    thread while it lives, which must not outlast the browser tests (asyncio.run and
    async_to_sync refuse to run beside it)."""
    if not os.path.exists(CHROMIUM):
        service_missing("Chromium is missing: install Debian's chromium package (.ci/run does)")
    # Django sees that loop and refuses ORM calls (SynchronousOnlyOperation), although they
    # are plain blocking calls between browser steps, never inside a coroutine. Allow them
    # only while the browser runs; tests/servers.py keeps it from the server processes.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@dataclass
class PageWatch:
    """What a page did that chatsite's pages must never do."""

    origin: str
    dialogs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)
    forgiven: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)  # for prompts the page opens on purpose

    def attach(self, page: Page) -> None:
        page.on("dialog", self._on_dialog)
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.console_errors.append(f"page error: {error}"))
        page.on("request", self._on_request)
        page.on("response", self._on_response)

    def _on_dialog(self, dialog: object) -> None:
        if dialog.type in ("prompt", "confirm") and self.answers:
            dialog.accept(self.answers.pop(0))
            return
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def answer_next_prompt(self, answer: str) -> None:
        """The page's next prompt (Rename's) or confirm (Delete's, with "": OK) is its own,
        opened on purpose: answered so."""
        self.answers.append(answer)

    def _on_console(self, message: object) -> None:
        if message.type == "error":
            self.console_errors.append(f"{message.text} ({message.location.get('url')})")

    def _on_request(self, request: object) -> None:
        url = request.url
        if not (url.startswith(self.origin + "/") or url.startswith("data:")):
            self.outside_requests.append(url)

    def _on_response(self, response: object) -> None:
        if response.status >= 400:
            self.console_errors.append(f"HTTP {response.status} for {response.url}")

    def forgive_console_errors(self, fragment: str) -> None:
        """Forgive the errors a test causes on purpose (say, by killing the server): those
        holding `fragment` (a status, a path; the server's origin is not searched).

        Later ones too: the browser may log an error after the page has shown what it did.
        """
        self.forgiven.append(fragment)

    def unforgiven_errors(self) -> list[str]:
        def forgiven(error: str) -> bool:
            return any(fragment in error.replace(self.origin, "") for fragment in self.forgiven)

        return [error for error in self.console_errors if not forgiven(error)]

    def assert_clean(self) -> None:
        assert self.dialogs == [], "a dialog opened: script ran"
        errors = self.unforgiven_errors()
        assert errors == [], "the page logged errors (CSP violations are errors)"
        assert self.outside_requests == [], "the page requested something outside the site"


class Browsing:
    """Opens watched pages in fresh browser contexts (one per user) against one server."""

    def __init__(
        self, browser: Browser, origin: str, request: pytest.FixtureRequest, label: str
    ) -> None:
        self.label = label
        self.browser = browser
        self.origin = origin
        self.request = request
        self.contexts: list[BrowserContext] = []
        self.watches: list[tuple[Page, PageWatch]] = []

    def new_page(self, **context_options: object) -> Page:
        options = {"viewport": DESKTOP, "base_url": self.origin, **context_options}
        context = self.browser.new_context(**options)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=self.origin)
        self.contexts.append(context)
        return self._watched(context.new_page())

    def new_tab(self, page: Page) -> Page:
        """Another watched page in the same browser context (same user, same cookies)."""
        return self._watched(page.context.new_page())

    def _watched(self, page: Page) -> Page:
        watch = PageWatch(self.origin)
        watch.attach(page)
        self.watches.append((page, watch))
        return page

    def watch_of(self, page: Page) -> PageWatch:
        return next(watch for watched, watch in self.watches if watched is page)

    def logged_in(self, user: object, **context_options: object) -> Page:
        """A page logged in as `user` through the real login form."""
        page = self.new_page(**context_options)
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill(user.username)
        page.get_by_label("Password").fill(f"{user.username}-password")
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(re.compile(r"/$"))
        return page

    def close(self, screenshots: bool) -> None:
        name = re.sub(r"[^\w.-]+", "_", self.request.node.name)
        for number, (page, _) in enumerate(self.watches):
            if screenshots and not page.is_closed():
                path = ARTIFACTS / f"{name}-{self.label}-page{number + 1}.png"
                page.screenshot(path=path, full_page=True)
                print(f"screenshot of the failed test's page: {path}")
        for context in self.contexts:
            context.close()


@pytest.fixture
def open_browsing(browser, request, transactional_db) -> Iterator:
    """open_browsing(origin) -> a Browsing session against that server (for start_server).

    It depends on the database fixture so that its pages close before the database is flushed.
    """
    sessions: list[Browsing] = []

    def open_session(origin: str) -> Browsing:
        sessions.append(Browsing(browser, origin, request, f"s{len(sessions) + 1}"))
        return sessions[-1]

    yield open_session
    report = getattr(request.node, "report_call", None)
    failed = report is None or report.failed
    watches = [watch for session in sessions for _, watch in session.watches]
    dirty = any(
        watch.dialogs or watch.unforgiven_errors() or watch.outside_requests for watch in watches
    )
    for session in sessions:
        session.close(screenshots=failed or dirty)
    if not failed:
        for watch in watches:
            watch.assert_clean()


@pytest.fixture
def browsing(server, open_browsing) -> Browsing:
    """Pages against the shared server; each must end without dialogs, errors or leaks."""
    return open_browsing(server.url)


@pytest.fixture
def new_gate() -> Iterator:
    """new_gate() -> a stub Gate that is opened at the end of the test if the test did not,
    so no reply is left waiting on the stub for the next test."""
    gates: list[Gate] = []

    def make() -> Gate:
        gates.append(Gate())
        return gates[-1]

    yield make
    for gate in gates:
        gate.open()


class BaitServer:
    """An attacker's site for untrusted-output payloads to point at: an HTTP server on
    another loopback port that records every request it gets (there must be none)."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        paths = self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/gif")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def bait() -> Iterator[BaitServer]:
    server = BaitServer()
    yield server
    server.httpd.shutdown()
