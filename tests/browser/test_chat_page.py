"""The chat page as a person uses it: send, watch the reply grow, read, copy, stop, regenerate,
choose among replies."""

import re

import pytest
from playwright.sync_api import expect

from conversations.models import Conversation, Message
from conversations.producers import CLIENT_GONE
from tests.browser.pages import (
    chat_with_a_held_reply,
    chat_with_alternatives,
    clipboard_text,
    gated_stream,
    last_reply,
    open_chat,
    open_new_chat,
    replies,
    reply_body,
    send_message,
    wait_until_final,
)
from tests.chats import add_chat
from tests.stub import Script, json_error, openai_chunk, openai_stream, openai_usage, sse

pytestmark = pytest.mark.browser

CODE = 'def greet(name):\n    return f"Hello {name}"'
MARKDOWN_HEAD = "Here is **bold** text.\n\n| Name | Score |\n|------|------:|\n| Ada | 10 |\n\n"
MARKDOWN_CODE_START = "```python\ndef greet(name):\n"
MARKDOWN_CODE_END = '    return f"Hello {name}"\n```\n'


def test_person_logs_in_sends_and_watches_the_reply_grow(browsing, stub, alice, new_gate):
    first, second = new_gate(), new_gate()
    stub.queue(gated_stream(["Hel", "lo, wor", "ld."], [first, second, None], usage=(12, 3)))
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, "Say hello")

    expect(page.locator(".message.user .body")).to_have_text("Say hello")
    expect(reply_body(page)).to_have_text("Hel")
    expect(last_reply(page)).to_have_attribute("data-status", "streaming")
    expect(last_reply(page).locator(".status")).to_have_text("Generating…")
    expect(page.locator("#stop")).to_be_visible()
    expect(page.locator("#send")).to_be_disabled()
    first.open()
    expect(reply_body(page)).to_have_text("Hello, wor")
    second.open()
    reply = wait_until_final(page)

    expect(reply_body(page)).to_have_text("Hello, world.")
    expect(reply.locator(".status")).to_have_text("Complete")
    expect(reply.locator(".usage")).to_contain_text("12 in · 3 out · 15 tokens")
    expect(reply.locator(".usage")).to_contain_text("first token in")
    expect(reply.locator(".usage")).to_contain_text("stub-model (OpenAI-compatible)")
    expect(page.locator("#stop")).to_be_hidden()
    expect(page.locator("#send")).to_be_enabled()
    expect(page.locator("#content")).to_have_value("")
    expect(page.locator("#chat-title")).to_have_text("Say hello")
    expect(page.locator("#conversation-list li.current")).to_have_text("Say hello")
    assert stub.requests[0].json["messages"][-1] == {"role": "user", "content": "Say hello"}
    # A screen reader moves from message to message by their headings.
    expect(page.locator("#messages").get_by_role("heading", level=2)).to_have_text(
        ["You said", "stub-model (OpenAI-compatible) said"]
    )


def test_markdown_tables_and_code_are_highlighted_mid_stream_and_copyable(
    browsing, stub, alice, new_gate
):
    inside_code = new_gate()
    parts = [MARKDOWN_HEAD + MARKDOWN_CODE_START, MARKDOWN_CODE_END]
    stub.queue(gated_stream(parts, [inside_code, None]))
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, "Show me a table and some code")

    # Mid-stream, with the code fence still open, the Markdown is already formatted.
    body = reply_body(page)
    expect(body.locator("strong")).to_have_text("bold")
    expect(body.locator("table th")).to_have_text(["Name", "Score"])
    expect(body.locator("table td")).to_have_text(["Ada", "10"])
    expect(body.locator("pre code.hljs .hljs-keyword").first).to_have_text("def")
    inside_code.open()
    wait_until_final(page)

    expect(body.locator(".code-head")).to_contain_text("python")
    expect(body.locator("pre code")).to_have_text(CODE + "\n")
    expect(body.locator(".hljs-string")).to_have_text('f"Hello {name}"')
    body.get_by_role("button", name="Copy code").click()
    expect(body.get_by_role("button", name="Copied")).to_be_visible()
    assert clipboard_text(page).rstrip("\n") == CODE
    last_reply(page).locator(".meta").get_by_role("button", name="Copy").click()
    assert clipboard_text(page) == MARKDOWN_HEAD + MARKDOWN_CODE_START + MARKDOWN_CODE_END


def test_enter_sends_and_shift_enter_starts_a_new_line(browsing, stub, alice):
    stub.queue(openai_stream(["Two lines received."]))
    page = browsing.logged_in(alice)
    open_new_chat(page)
    composer = page.locator("#content")
    composer.press_sequentially("first line")
    composer.press("Shift+Enter")
    composer.press_sequentially("second line")

    expect(composer).to_have_value("first line\nsecond line")
    expect(page.locator(".message")).to_have_count(0)
    composer.press("Enter")
    expect(page.locator(".message.user .body")).to_have_text("first line\nsecond line")
    wait_until_final(page)
    expect(composer).to_have_value("")
    assert stub.requests[0].json["messages"][-1]["content"] == "first line\nsecond line"


def test_on_a_touch_screen_enter_starts_a_new_line_and_send_sends(browsing, stub, alice):
    page = browsing.logged_in(alice, has_touch=True)
    open_new_chat(page)
    box = page.locator("#content")
    box.fill("First line")
    box.press("Enter")
    box.press_sequentially("second line")
    expect(box).to_have_value("First line\nsecond line")
    assert not Message.objects.exists()

    page.locator("#send").tap()
    wait_until_final(page)
    expect(page.locator(".message.user .body")).to_have_text("First line\nsecond line")

    box.fill("From a tablet's keyboard")
    box.press("Control+Enter")
    wait_until_final(page)
    expect(page.locator(".message.user .body")).to_have_count(2)


def test_stop_keeps_the_text_and_regenerate_asks_the_picked_model(browsing, stub, alice, new_gate):
    page = chat_with_a_held_reply(
        browsing, alice, stub, new_gate(), "Partial answer", "Tell me a long story"
    )
    page.locator("#stop").click()

    reply = wait_until_final(page, "stopped")
    assert stub.requests[0].wait_disconnected(), "stop did not close the provider connection"
    expect(reply_body(page)).to_have_text("Partial answer")
    expect(reply.locator(".status")).to_have_text("Stopped")
    expect(reply.locator(".reply-notice")).to_contain_text("you stopped this reply")
    expect(page.locator("#stop")).to_be_hidden()

    stub.queue(openai_stream(["Second", " answer"]))
    page.locator("#model").select_option(label="stub-other (OpenAI-compatible)")
    reply.get_by_role("button", name="Regenerate").click()
    wait_until_final(page)
    expect(reply_body(page)).to_have_text("Second answer")
    expect(last_reply(page).locator(".alternatives")).to_contain_text("2 of 2")
    expect(last_reply(page).locator(".usage")).to_contain_text("stub-other")
    assert stub.requests[1].json["model"] == "stub-other"
    assert stub.requests[1].json["messages"][-1]["content"] == "Tell me a long story"

    with page.expect_response(re.compile(r"/choose/$")):
        last_reply(page).get_by_role("button", name="Previous reply").click()
    expect(reply_body(page)).to_have_text("Partial answer")
    expect(last_reply(page).locator(".alternatives")).to_contain_text("1 of 2")
    # The reply chosen is the one the conversation goes on from, kept for the next visit.
    page.reload()
    expect(reply_body(page)).to_have_text("Partial answer")
    expect(last_reply(page).locator(".alternatives")).to_contain_text("1 of 2")
    expect(page.locator("#model")).to_have_value("openai:stub-other")


def test_a_message_sent_while_a_choice_is_on_its_way_is_asked_with_the_reply_chosen(
    browsing, stub, alice
):
    page = chat_with_alternatives(browsing, alice, stub, 2, openai_stream(["Third"]))
    held = []
    page.route(re.compile(r"/choose/$"), lambda route: held.append(route))  # it waits here
    last_reply(page).get_by_role("button", name="Previous reply").click()
    while not held:
        page.wait_for_timeout(50)  # until the choice is on its way (a wait, not a timing check)

    send_message(page, "And then?")
    held[0].continue_()
    expect(reply_body(page)).to_have_text("Third")
    assert stub.requests[-1].json["messages"][1] == {"role": "assistant", "content": "First"}


def test_a_reply_chosen_again_while_it_streams_stays_shown_once_it_ends(
    browsing, stub, alice, new_gate
):
    gate = new_gate()
    stub.queue(openai_stream(["First"]), gated_stream(["Second"], [gate]))
    stub.queue(openai_stream(["Third"]))
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, "Hi")
    last_reply(page).get_by_role("button", name="Regenerate").click()
    expect(reply_body(page)).to_have_text("Second")  # held at the gate
    for arrow in ("Previous reply", "Next reply"):  # away, and back while it streams
        with page.expect_response(re.compile(r"/choose/$")):
            last_reply(page).get_by_role("button", name=arrow).click()
    gate.open()
    wait_until_final(page)

    # Its end, from the stream, predates the choice: the choice still stands.
    send_message(page, "And then?")
    expect(reply_body(page)).to_have_text("Third")
    expect(replies(page).first.locator(".body")).to_have_text("Second")
    assert stub.requests[-1].json["messages"][1] == {"role": "assistant", "content": "Second"}


def test_escape_stops_the_reply(browsing, stub, alice, new_gate):
    page = chat_with_a_held_reply(browsing, alice, stub, new_gate(), "Going on and on")
    page.locator("#content").press("Escape")
    wait_until_final(page, "stopped")
    assert stub.requests[0].wait_disconnected()


def test_failed_reply_says_why_in_plain_words(browsing, stub, alice):
    stub.queue(json_error(400, "This model's maximum context length is 8192 tokens."))
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, "A very long question")

    reply = wait_until_final(page, "failed")
    expect(reply.locator(".status")).to_have_text("Failed")
    notice = reply.locator(".reply-notice")
    expect(notice).to_contain_text("Failed: OpenAI-compatible refused the request (HTTP 400)")
    expect(notice).to_contain_text("maximum context length is 8192 tokens")
    expect(reply.get_by_role("button", name="Regenerate")).to_be_visible()
    page.reload()
    expect(page.locator(".reply-notice")).to_contain_text("maximum context length")


def test_a_reply_an_api_client_abandoned_says_why_it_stopped(browsing, alice):
    conversation = add_chat(
        alice, "From a tool", status="stopped", error_code="client_disconnected", error=CLIENT_GONE
    )
    page = browsing.logged_in(alice)
    page.goto(f"/c/{conversation.pk}/")
    reply = last_reply(page)
    expect(reply.locator(".status")).to_have_text("Stopped")
    expect(reply.locator(".reply-notice")).to_have_text(f"Stopped: {CLIENT_GONE}")


def test_reasoning_closed_while_the_reply_streams_stays_closed(browsing, stub, alice, new_gate):
    gate, later = new_gate(), new_gate()
    stub.queue(
        Script(
            steps=[
                openai_chunk(reasoning="Let me think."),
                openai_chunk("The answer"),
                gate,
                openai_chunk(reasoning=" More."),  # redraws the reply, mid-stream
                later,
                openai_chunk(" is 42.", finish_reason="stop"),
                openai_usage(9, 5),
                sse("[DONE]"),
            ]
        )
    )
    page = browsing.logged_in(alice)
    open_new_chat(page)
    send_message(page, "Think first")
    reasoning = last_reply(page).locator("details.reasoning")
    expect(reasoning).to_have_attribute("open", "")
    reasoning.locator("summary").click()
    gate.open()
    expect(reasoning.locator(".plain")).to_have_text("Let me think. More.")
    expect(last_reply(page)).to_have_attribute("data-status", "streaming")
    expect(reasoning).not_to_have_attribute("open", "")
    later.open()
    wait_until_final(page)
    expect(reply_body(page)).to_have_text("The answer is 42.")
    expect(last_reply(page).locator("details.reasoning")).not_to_have_attribute("open", "")


def test_a_message_sent_while_scrolled_up_is_shown(browsing, stub, alice):
    conversation = add_chat(alice, "Long history")
    for n in range(6):
        asked = conversation.messages.create(role="user", status="complete", content=f"Q{n}")
        conversation.messages.create(
            role="assistant", parent=asked, status="complete", content="Line\n\n" * 40
        )
    page = browsing.logged_in(alice)
    open_chat(page, f"/c/{conversation.pk}/")
    page.evaluate("window.scrollTo(0, 0)")
    send_message(page, "Newest question")
    wait_until_final(page)
    expect(page.locator(".message.user").last).to_be_in_viewport()


@pytest.mark.parametrize("source", ["chat", "api"])
def test_deleting_a_conversation_goes_back_to_the_list_it_was_in(browsing, alice, source):
    add_chat(alice, "A chat kept")
    gone = add_chat(alice, "To delete")
    Conversation.objects.filter(pk=gone.pk).update(source=source)
    page = browsing.logged_in(alice)
    open_chat(page, f"/c/{gone.id}/")
    browsing.watch_of(page).answer_next_prompt("")  # "Delete this conversation…?" OK
    page.get_by_role("button", name="Delete").click()
    listed = page.locator("#conversation-list li[data-conversation-id]")
    if source == "chat":
        expect(page).to_have_url(f"{browsing.origin}/")
        expect(listed).to_have_text(["A chat kept"])
    else:  # the API tab, empty now, still with the way back to the chats
        expect(page).to_have_url(f"{browsing.origin}/?source=api")
        expect(page.locator("#conversation-list")).to_contain_text("No conversations from the API.")
        expect(listed).to_have_count(0)
        page.get_by_role("link", name="Chats", exact=True).click()
        expect(listed).to_have_text(["A chat kept"])
    assert list(Conversation.objects.values_list("title", flat=True)) == ["A chat kept"]
