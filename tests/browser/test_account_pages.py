"""The account pages in the browser: a new API key copied in one click, revoking asked first,
and logging out clearing the drafts the tab kept."""

import pytest
from playwright.sync_api import Page, expect

from conversations.models import ApiKey
from tests.browser.pages import clipboard_text, open_chat, open_new_chat

pytestmark = pytest.mark.browser


def kept_drafts(page: Page) -> list[str]:
    return page.evaluate(
        "Object.keys(sessionStorage).filter((key) => key.startsWith('chatsite-draft-'))"
    )


def test_a_new_keys_copy_button_copies_its_secret(browsing, alice):
    page = browsing.logged_in(alice)
    page.goto("/settings/keys/")
    page.get_by_label("Name").fill("laptop")
    page.get_by_label("Your password").fill("alice-password")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key").text_content()
    assert secret.startswith("cs_")

    page.get_by_role("button", name="Copy key").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert clipboard_text(page) == secret


def test_the_key_form_reloaded_creates_no_second_key(browsing, alice):
    page = browsing.logged_in(alice)
    page.goto("/settings/keys/")
    page.get_by_label("Your password").fill("alice-password")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#new-key")).to_be_visible()

    page.reload()  # the browser sends the form again
    expect(page.locator("#sent-again")).to_contain_text("no other key was created")
    expect(page.locator("#new-key")).to_have_count(0)
    assert ApiKey.objects.count() == 1


def test_create_pressed_again_while_the_key_is_on_its_way_sends_nothing(browsing, alice):
    page = browsing.logged_in(alice)
    page.goto("/settings/keys/")
    # Two submits of the form, as two presses of Create before the answer: the page lets
    # only the first through. (Events made here submit nothing themselves.)
    refused = page.locator("#create-key").evaluate(
        """form => [1, 2].map(() => {
            const submit = new SubmitEvent("submit", {cancelable: true});
            form.dispatchEvent(submit);
            return submit.defaultPrevented;
        })"""
    )
    assert refused == [False, True]


def test_revoking_a_key_is_asked_first(browsing, alice):
    page = browsing.logged_in(alice)
    page.goto("/settings/keys/")
    page.get_by_label("Name").fill("laptop")
    page.get_by_label("Your password").fill("alice-password")
    page.get_by_role("button", name="Create key").click()

    page.get_by_role("link", name="Revoke…").click()
    expect(page.get_by_role("heading")).to_contain_text("Revoke the key “laptop …")
    page.get_by_role("link", name="Cancel").click()
    assert ApiKey.objects.get().revoked_at is None

    page.get_by_role("link", name="Revoke…").click()
    page.get_by_role("button", name="Revoke the key").click()
    expect(page.locator(".notice")).to_contain_text("Revoked laptop …")
    assert ApiKey.objects.get().revoked_at is not None


def test_logging_out_in_one_tab_clears_the_drafts_the_others_kept(browsing, alice):
    page = browsing.logged_in(alice)
    open_new_chat(page)
    page.locator("#content").fill("Not for the next person either")
    other = browsing.new_tab(page)
    other.goto("/")
    assert kept_drafts(other) == []  # each tab keeps its own
    assert len(kept_drafts(page)) == 1

    other.get_by_role("button", name="Log out").click()
    page.wait_for_function(
        "() => !Object.keys(sessionStorage).some((key) => key.startsWith('chatsite-draft-'))"
    )
    page.locator("#content").press_sequentially(", typed on")
    assert kept_drafts(page) == []  # and none kept from then on


def test_logging_out_clears_the_drafts_the_tab_kept(browsing, alice):
    page = browsing.logged_in(alice)
    open_new_chat(page)
    chat_url = page.url
    page.locator("#content").fill("Not for the next person")
    assert len(kept_drafts(page)) == 1

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="You are logged out")).to_be_visible()
    page.wait_for_load_state("load")  # its scripts have run
    assert kept_drafts(page) == []

    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(alice.username)
    page.get_by_label("Password").fill(f"{alice.username}-password")
    page.get_by_role("button", name="Log in").click()
    open_chat(page, chat_url)
    expect(page.locator("#content")).to_have_value("")
