"""A session or user the cache does not hold is read with SQL written once
(chatsite/auth_reads.py): the same row, with the same types, as Django's own query reads,
and nothing for an expired session or a deactivated user."""

import asyncio
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chatsite.auth_reads import session_row, user_row
from chatsite.sessions import SessionStore
from chatsite.users import CachedModelBackend, cache_key
from tests.rows import assert_same_row


def signed_in_session(user) -> str:
    browser = Client()
    browser.force_login(user)
    return browser.cookies["sessionid"].value


def test_a_session_is_read_as_the_orm_reads_it(alice, bob):
    key = signed_in_session(alice)
    signed_in_session(bob)  # another session is not the one read
    expected = Session.objects.get(session_key=key, expire_date__gt=timezone.now())
    with CaptureQueriesContext(connection) as queries:
        read = session_row(Session, key)
    assert len(queries) == 1
    assert_same_row(read, expected)


def test_an_expired_or_unknown_session_is_not_read(alice):
    key = signed_in_session(alice)
    Session.objects.filter(pk=key).update(expire_date=timezone.now() - timedelta(seconds=1))
    assert session_row(Session, key) is None
    assert session_row(Session, "x" * 32) is None
    assert session_row(Session, None) is None


def test_a_session_the_cache_lost_still_signs_its_user_in(alice):
    key = signed_in_session(alice)
    cache.clear()  # a restart, or the session culled
    assert SessionStore(key).load()["_auth_user_id"] == str(alice.pk)
    assert asyncio.run(SessionStore(key).aload())["_auth_user_id"] == str(alice.pk)
    with CaptureQueriesContext(connection) as queries:
        assert SessionStore(key).load()["_auth_user_id"] == str(alice.pk)
    assert len(queries) == 0  # cached by the read


def test_an_expired_session_signs_nobody_in_and_its_key_is_not_reused(alice):
    key = signed_in_session(alice)
    Session.objects.filter(pk=key).update(expire_date=timezone.now() - timedelta(seconds=1))
    cache.clear()
    store = SessionStore(key)
    assert store.load() == {}
    assert store.session_key is None  # a new session gets a new key, as in Django
    assert asyncio.run(SessionStore(key).aload()) == {}


def test_a_user_is_read_as_the_orm_reads_it(alice, bob):
    alice.last_login = timezone.now()
    alice.save()
    expected = get_user_model().objects.get(pk=alice.pk)
    with CaptureQueriesContext(connection) as queries:
        read = user_row(alice.pk)
    assert len(queries) == 1
    assert_same_row(read, expected)
    assert user_row(str(alice.pk)).pk == alice.pk  # the session stores the id as text
    assert user_row(10**9) is None


def test_a_deactivated_user_is_not_signed_in_from_the_database(alice):
    backend = CachedModelBackend()
    cache.delete(cache_key(alice.pk))
    assert backend.get_user(alice.pk) == alice
    assert asyncio.run(backend.aget_user(alice.pk)) == alice
    alice.is_active = False
    alice.save()  # drops her cached copy
    assert backend.get_user(alice.pk) is None
    assert asyncio.run(backend.aget_user(alice.pk)) is None
    assert cache.get(cache_key(alice.pk)) is None  # not cached either
