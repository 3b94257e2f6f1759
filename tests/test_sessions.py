"""Sessions are read from a cache (chatsite/sessions.py); a cache that fails must neither
lock everyone out nor bring back a session that was logged out."""

import asyncio

import pytest
from django.contrib.sessions.models import Session
from django.test import Client, override_settings

from chatsite.sessions import SessionCacheUnavailable, SessionStore

# Redis where nothing listens: every cache call fails at once (connection refused).
BROKEN_CACHE = {
    "default": {
        "BACKEND": "chatsite.redis_cache.ProcessRedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
    }
}


@pytest.fixture
def alice_browser(alice) -> Client:
    browser = Client(raise_request_exception=False)
    browser.force_login(alice)  # stored in the database (its cache copy is not needed)
    return browser


def test_a_logged_in_user_is_served_while_the_session_cache_is_down(alice_browser):
    with override_settings(CACHES=BROKEN_CACHE):
        response = alice_browser.get("/api/conversations/")
    assert response.status_code == 200, response.content[:300]


def test_logging_in_works_while_the_session_cache_is_down(alice):
    browser = Client(raise_request_exception=False)
    credentials = {"username": "alice", "password": "alice-password"}
    with override_settings(CACHES=BROKEN_CACHE):
        response = browser.post("/accounts/login/", credentials)
        assert response.status_code == 302, response.content[:300]
        assert browser.get("/api/conversations/").status_code == 200


def test_a_logout_the_cache_cannot_record_fails_and_leaves_the_session_whole(alice_browser, bob):
    session_key = alice_browser.cookies["sessionid"].value
    with override_settings(CACHES=BROKEN_CACHE):
        response = alice_browser.post("/accounts/logout/")
        # Signing in as someone else would end alice's session too: refused alike.
        again = alice_browser.post(
            "/accounts/login/", {"username": "bob", "password": "bob-password"}
        )
    for refused in (response, again):
        assert refused.status_code == 503
        assert b"session store cannot be reached" in refused.content
    # Not deleted from the database while its cached copy may live on: once the cache is back
    # that copy would log the cookie in again. Whole, the logout can simply be repeated.
    assert Session.objects.filter(session_key=session_key).exists()
    response = alice_browser.post("/accounts/logout/")  # the cache is back
    assert response.status_code == 302
    assert not Session.objects.filter(session_key=session_key).exists()
    assert alice_browser.get("/api/conversations/").status_code in (401, 403)


NEW_PASSWORD = {"new_password1": "a-new-password-4321", "new_password2": "a-new-password-4321"}


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/admin/logout/", {}),
        ("/accounts/password_change/", {"old_password": "alice-password", **NEW_PASSWORD}),
        ("/admin/password_change/", {"old_password": "alice-password", **NEW_PASSWORD}),
        ("/admin/auth/user/{alice.pk}/password/", {
            "password1": NEW_PASSWORD["new_password1"], "password2": NEW_PASSWORD["new_password2"],
        }),
    ],
)  # fmt: skip
def test_every_page_that_ends_a_session_answers_503_while_the_cache_is_down(
    alice_browser, alice, path, form
):
    """Not only chatsite's login and logout: Django's admin and password pages end or cycle
    sessions too, and must refuse the same way, changing nothing (the password included)."""
    alice.is_staff = alice.is_superuser = True  # the admin's pages are for staff
    alice.save()
    alice_browser.force_login(alice)  # saving the user changed its session hash
    session_key = alice_browser.cookies["sessionid"].value
    with override_settings(CACHES=BROKEN_CACHE):
        response = alice_browser.post(path.format(alice=alice), form)
    assert response.status_code == 503, response.content[:300]
    assert b"session store cannot be reached" in response.content
    assert response["Retry-After"] == "5"
    assert Session.objects.filter(session_key=session_key).exists()
    alice.refresh_from_db()
    assert alice.check_password("alice-password")
    # With the cache back the same request does what it says (the form was valid).
    assert alice_browser.post(path.format(alice=alice), form).status_code == 302


def test_async_reads_and_logouts_behave_the_same(alice_browser):
    """aload(), aexists() and adelete(), for async code (request.auser() reads with aload)."""
    session_key = alice_browser.cookies["sessionid"].value
    with override_settings(CACHES=BROKEN_CACHE):
        store = SessionStore(session_key)
        assert asyncio.run(store.aload())["_auth_user_id"]
        assert asyncio.run(store.aexists(session_key))
        with pytest.raises(SessionCacheUnavailable):
            asyncio.run(store.adelete())
    assert Session.objects.filter(session_key=session_key).exists()
    asyncio.run(SessionStore(session_key).adelete())
    assert not Session.objects.filter(session_key=session_key).exists()
