"""Changing one's password on the site: its own pages (not the admin's), linked from each."""

import pytest
from django.conf import settings
from django.test import Client

from tests.test_sessions import NEW_PASSWORD


def signed_in(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def test_every_page_links_to_the_site_password_page(alice):
    page = signed_in(alice).get("/settings/keys/")
    assert b'href="/accounts/password_change/"' in page.content


def test_a_password_is_changed_on_the_site_pages(alice):
    browser = signed_in(alice)
    form = browser.get("/accounts/password_change/")
    assert form.status_code == 200
    assert b"Change password \xc2\xb7 chatsite" in form.content  # the site's page
    assert b"site admin" not in form.content
    form_data = {"old_password": "alice-password", **NEW_PASSWORD}
    done = browser.post("/accounts/password_change/", form_data, follow=True)
    assert done.redirect_chain[-1][0] == "/accounts/password_change/done/"
    assert b"Password changed \xc2\xb7 chatsite" in done.content  # the site's page again
    assert b"Your API keys still work" in done.content  # a password change leaves them be
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD["new_password1"])


def test_a_wrong_current_password_is_shown_and_changes_nothing(alice):
    response = signed_in(alice).post(
        "/accounts/password_change/", {"old_password": "not-it", **NEW_PASSWORD}
    )
    assert response.status_code == 200
    assert b'class="error"' in response.content
    assert b"old password was entered incorrectly" in response.content
    alice.refresh_from_db()
    assert alice.check_password("alice-password")


def test_the_admin_keeps_its_own_password_page(bob):
    page = signed_in(bob).get("/admin/password_change/")
    assert page.status_code == 200
    assert b"site admin" in page.content


@pytest.mark.parametrize("path", ["/accounts/password_change/", "/admin/password_change/"])
def test_guessing_the_current_password_is_locked_out_as_logins_are(bob, path):
    # A session left open must not be a way to try passwords without limit.
    browser = signed_in(bob)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        guess = browser.post(path, {"old_password": "a wrong guess", **NEW_PASSWORD})
        assert guess.status_code == 200
        assert b"old password was entered incorrectly" in guess.content
    last_guess = browser.post(path, {"old_password": "a wrong guess", **NEW_PASSWORD})
    right_one = browser.post(path, {"old_password": "bob-password", **NEW_PASSWORD})
    for response in (last_guess, right_one):
        assert response.status_code == 429
        assert b"Too many failed logins" in response.content
    bob.refresh_from_db()
    assert bob.check_password("bob-password")


def test_the_right_current_password_changes_it_in_the_admin(bob):
    done = signed_in(bob).post(
        "/admin/password_change/", {"old_password": "bob-password", **NEW_PASSWORD}
    )
    assert done.status_code == 302 and done["Location"] == "/admin/password_change/done/"
    bob.refresh_from_db()
    assert bob.check_password(NEW_PASSWORD["new_password1"])


def test_there_is_no_password_reset_by_email(alice):
    # chatsite sends no mail: staff set passwords. Its pages would only say which addresses
    # have accounts.
    for path in ["/accounts/password_reset/", "/accounts/reset/done/"]:
        assert Client().get(path).status_code == 404
        assert signed_in(alice).post(path, {"email": "alice@example.com"}).status_code == 404


def test_a_right_current_password_clears_the_wrong_ones_before_it(bob):
    browser = signed_in(bob)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        wrong = {"old_password": "a wrong guess", **NEW_PASSWORD}
        assert browser.post("/accounts/password_change/", wrong).status_code == 200
    right = {"old_password": "bob-password", **NEW_PASSWORD}
    assert browser.post("/accounts/password_change/", right).status_code == 302
    # One typo at the next login is one failure, not the last before a lockout.
    typo = Client().post("/accounts/login/", {"username": "bob", "password": "typo"})
    assert typo.status_code == 200
