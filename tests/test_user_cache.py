"""Each request's user comes from the cache (chatsite/users.py), yet a user changed by an
admin or by themselves is seen as changed on their very next request."""

import asyncio

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from chatsite.users import CachedModelBackend, cache_key
from tests.test_sessions import BROKEN_CACHE, NEW_PASSWORD


@pytest.fixture
def alice_browser(alice) -> Client:
    browser = Client()
    browser.force_login(alice)
    assert browser.get("/api/conversations/").status_code == 200  # the user is cached now
    return browser


def user_reads(browser: Client) -> tuple[int, list[str]]:
    """GET the conversation list; its status and the statements that read a user."""
    with CaptureQueriesContext(connection) as queries:
        status = browser.get("/api/conversations/").status_code
    return status, [q["sql"] for q in queries.captured_queries if "auth_user" in q["sql"]]


def test_a_deactivated_user_is_refused_on_their_next_request(alice_browser, alice):
    alice.is_active = False
    alice.save()  # as the admin's user page does
    status, reads = user_reads(alice_browser)
    assert status in (401, 403)
    assert reads  # read again, not taken from the cache


def test_a_password_changed_in_another_session_ends_this_one(alice_browser, alice):
    other = Client()
    other.force_login(alice)
    form = {"old_password": "alice-password", **NEW_PASSWORD}
    assert other.post("/accounts/password_change/", form).status_code == 302
    assert user_reads(other)[0] == 200  # the session that changed it stays signed in
    assert user_reads(alice_browser)[0] in (401, 403)


def test_a_deleted_user_is_dropped_from_the_cache(alice_browser, alice):
    assert cache.get(cache_key(alice.pk)) is not None
    get_user_model().objects.filter(pk=alice.pk).delete()
    assert cache.get(cache_key(alice.pk)) is None
    assert user_reads(alice_browser)[0] in (401, 403)


def test_a_user_can_be_changed_while_the_cache_is_down(alice_browser, alice):
    with override_settings(CACHES=BROKEN_CACHE):
        alice.first_name = "Alice"
        alice.save()  # the cache cannot be told; the change is saved all the same
        status, reads = user_reads(alice_browser)
    assert status == 200 and reads  # served from the database meanwhile
    alice.refresh_from_db()
    assert alice.first_name == "Alice"


def test_async_reads_behave_the_same(alice):
    """aget_user(), for async code (request.auser())."""
    backend = CachedModelBackend()
    with override_settings(CACHES=BROKEN_CACHE):
        assert asyncio.run(backend.aget_user(alice.pk)) == alice  # from the database
    assert cache.get(cache_key(alice.pk)) is None
    assert asyncio.run(backend.aget_user(alice.pk)) == alice
    assert cache.get(cache_key(alice.pk)) == alice  # kept for the next request
    alice.is_active = False
    alice.save()
    assert asyncio.run(backend.aget_user(alice.pk)) is None
