"""The chat page's system prompt editor."""

import pytest
from playwright.sync_api import expect

from conversations.models import Conversation
from tests.browser.pages import open_new_chat, send_message, wait_until_final
from tests.stub import openai_stream

pytestmark = pytest.mark.browser


def test_the_system_prompt_set_on_the_page_is_told_to_the_model(browsing, stub, alice):
    page = browsing.logged_in(alice)
    open_new_chat(page)
    editor = page.locator("#system-prompt")
    expect(editor.locator("summary")).to_have_text("System prompt")
    editor.locator("summary").click()
    editor.get_by_label("System prompt for this conversation").fill("Answer in French.")
    editor.get_by_role("button", name="Save").click()
    expect(editor.get_by_role("status")).to_have_text("Saved. The next replies follow it.")
    expect(editor.locator("summary")).to_have_text("System prompt: set")
    assert Conversation.objects.get().system_prompt == "Answer in French."

    stub.queue(openai_stream(["Bonjour"]))
    send_message(page, "Hi")
    wait_until_final(page)
    assert stub.requests[0].json["messages"][0] == {
        "role": "system",
        "content": "Answer in French.",
    }
    page.reload()
    expect(page.locator("#system-prompt summary")).to_have_text("System prompt: set")
    expect(page.locator("#system-prompt-text")).to_have_value("Answer in French.")


def test_a_system_prompt_with_markup_stays_text(browsing, alice):
    prompt = '</textarea><img src=x onerror="alert(1)"><b>bold</b>'
    conversation = Conversation.objects.create(
        owner=alice, model="openai:stub-model", system_prompt=prompt
    )
    page = browsing.logged_in(alice)
    page.goto(f"/c/{conversation.id}/")
    expect(page.locator("#system-prompt-text")).to_have_value(prompt)
    assert page.locator("#system-prompt img, #system-prompt b").count() == 0
