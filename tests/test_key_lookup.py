"""The API-key lookup (conversations/key_lookup.py) reads what the ORM's QuerySet reads: the
same key, user and budget, with the same types, and nothing for a key that is not active."""

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations.apikeys import create_key, hash_secret, key_for_secret, revoke_key
from conversations.key_lookup import active_key
from conversations.models import ApiKey, UserBudget
from tests.rows import assert_same_row, fields


def orm_read(secret: str) -> ApiKey | None:
    keys = ApiKey.objects.active().select_related("user", "user__budget")
    return keys.filter(key_hash=hash_secret(secret)).first()


def assert_read_as_the_orm_reads(secret: str) -> ApiKey:
    expected = orm_read(secret)
    with CaptureQueriesContext(connection) as queries:
        key = active_key(hash_secret(secret))
        user_fields = fields(key.user)
    assert len(queries) == 1  # the user came with the key
    assert_same_row(key, expected)
    assert user_fields == fields(expected.user)
    return key


def test_a_key_is_read_with_its_user_and_budget_as_the_orm_reads_them(alice, bob):
    UserBudget.objects.create(user=alice, tokens_per_day=500, requests_per_minute=None)
    key, secret = create_key(alice, "laptop")
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now() - timedelta(hours=1))
    create_key(bob)  # another user's key is not the one found
    read = assert_read_as_the_orm_reads(secret)
    with CaptureQueriesContext(connection) as queries:
        assert fields(read.user.budget) == fields(orm_read(secret).user.budget)
    assert len(queries) == 1  # only orm_read's: the budget came with the key


def test_a_user_without_a_budget_is_known_to_have_none_without_another_query(alice):
    _, secret = create_key(alice)
    read = assert_read_as_the_orm_reads(secret)
    with CaptureQueriesContext(connection) as queries:
        assert not hasattr(read.user, "budget")  # UserBudget.DoesNotExist, as select_related
    assert len(queries) == 0


def test_revoked_unknown_and_deactivated_users_keys_are_not_found(alice, charlie):
    revoked, revoked_secret = create_key(alice)
    revoke_key(revoked)
    _, charlies = create_key(charlie)
    charlie.is_active = False
    charlie.save()
    for secret in (revoked_secret, charlies, "cs_" + "x" * 43):
        assert active_key(hash_secret(secret)) is None
        assert key_for_secret(secret) is None
    _, alices = create_key(alice)
    assert key_for_secret(alices).user == alice  # her other key still works
