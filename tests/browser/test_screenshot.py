"""The README's screenshot: the chat page mid-reply, made by the browser tests' own tooling.

The test always saves .test-artifacts/chat-mid-reply.png; to refresh the README's picture run

    CHATSITE_UPDATE_SCREENSHOT=1 .venv/bin/python -m pytest tests/browser/test_screenshot.py

which also writes docs/screenshot.png.
"""

import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from conversations.models import Conversation
from tests.browser.pages import gated_stream, last_reply, open_chat, send_message, wait_until_final
from tests.servers import ARTIFACTS

pytestmark = pytest.mark.browser

README_SCREENSHOT = Path(settings.BASE_DIR) / "docs" / "screenshot.png"
OLDER_TITLES = ["Trip plan: Lisbon in May", "SQL window functions", "Birthday card ideas"]
FIRST_REPLY = """Both hold a sequence; the difference is whether it can change.

| | `list` | `tuple` |
|---|---|---|
| Mutable | yes | no |
| Usable as a dict key | no | yes |

```python
point = (3, 4)      # a fixed record
path = [point]      # a growing collection
path.append((5, 12))
```
"""
SECOND_REPLY_SO_FAR = """A generator yields values one at a time, so it needs no list in memory:

```python
def squares(limit):
    for n in range(limit):
        yield n * n
"""
SECOND_REPLY_REST = """
total = sum(squares(1_000_000))
```
"""


def test_chat_page_mid_reply_for_the_readme(browsing, stub, alice, new_gate):
    for minutes, title in enumerate(OLDER_TITLES, start=1):
        Conversation.objects.create(
            owner=alice,
            title=title,
            model="openai:stub-model",
            updated_at=timezone.now() - timedelta(hours=minutes),
        )
    chat = Conversation.objects.create(owner=alice, model="openai:stub-model")
    mid_reply = new_gate()
    stub.queue(
        gated_stream([FIRST_REPLY], [None], usage=(18, 96)),
        gated_stream([SECOND_REPLY_SO_FAR, SECOND_REPLY_REST], [mid_reply, None], usage=(130, 41)),
    )
    page = browsing.logged_in(alice, color_scheme="light", viewport={"width": 1280, "height": 1000})
    open_chat(page, f"/c/{chat.id}/")
    send_message(page, "List or tuple in Python: what is the difference?")
    wait_until_final(page)
    send_message(page, "And what is a generator?")

    expect(last_reply(page).locator(".hljs-keyword").first).to_have_text("def")
    expect(last_reply(page)).to_have_attribute("data-status", "streaming")
    expect(page.locator("#stop")).to_be_visible()
    page.locator("#content").fill("Can I use one twice?")
    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    shot = ARTIFACTS / "chat-mid-reply.png"
    page.screenshot(path=shot, animations="disabled", caret="hide")
    if os.environ.get("CHATSITE_UPDATE_SCREENSHOT"):
        README_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, README_SCREENSHOT)

    mid_reply.open()
    wait_until_final(page)
    expect(last_reply(page).locator("pre code")).to_contain_text("total = sum(squares(1_000_000))")
