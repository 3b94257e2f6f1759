"""Personal API keys: `Authorization: Bearer cs_…` instead of a session.

A key is 32 random bytes with a `cs_` prefix. Only its SHA-256 is stored (a fast hash is
enough for a secret this long), so the secret is shown once, when it is created. A revoked
key fails at once on new requests; the keys of open streams are re-checked every
CHATSITE_API_KEY_RECHECK_SECONDS, and a stream ends once its key is revoked.
"""

import hashlib
import logging
import secrets
from collections.abc import AsyncGenerator, Callable
from datetime import timedelta
from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from conversations.key_lookup import active_key
from conversations.models import ApiKey
from conversations.stream_watch import OpenCredentials, credential_ended_event, until_ended

logger = logging.getLogger(__name__)
PREFIX = "cs_"
# last_used_at is a hint for people, not a log: write it at most this often per key.
LAST_USED_RESOLUTION = timedelta(minutes=1)
INVALID_KEY = "The API key is invalid or revoked."
KEY_REVOKED_MESSAGE = "The API key was revoked."
KEY_REVOKED_EVENT = credential_ended_event("key_revoked", KEY_REVOKED_MESSAGE)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    user: AbstractBaseUser, name: str = "", form_token: UUID | None = None
) -> tuple[ApiKey, str]:
    """A new key for `user` and its secret, which is not stored anywhere."""
    secret = PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        user=user,
        name=name,
        key_hash=hash_secret(secret),
        last_four=secret[-4:],
        form_token=form_token,
    )
    return key, secret


def create_key_once(
    user: AbstractBaseUser, name: str, form_token: UUID
) -> tuple[ApiKey, str | None]:
    """The key the settings page's form `form_token` creates, with its secret; the same form
    sent again (a reload, a double click) gets that key back without its secret."""
    try:
        # Its own transaction: a twin request's insert makes only this one fail.
        with transaction.atomic():
            return create_key(user, name, form_token)
    except IntegrityError:
        key = ApiKey.objects.for_user(user).filter(form_token=form_token).first()
        if key is None:
            raise
        return key, None


def revoke_key(key: ApiKey) -> None:
    # Only the first revocation counts: its time stays what the owner saw.
    with transaction.atomic():
        ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    key.refresh_from_db(fields=["revoked_at"])


def bearer_secret(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer …` header; None for any other scheme."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def key_for_secret(secret: str) -> ApiKey | None:
    """The active key with this secret (and its user), noting when it was last used."""
    if not secret.startswith(PREFIX):
        return None
    # With its user and the user's budget: the requests that start replies check it.
    key = active_key(hash_secret(secret))
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or key.last_used_at < now - LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


# What a 401 asks for: the API's views (DRF, through authenticate_header) and the stream's.
WWW_AUTHENTICATE = 'Bearer realm="api"'


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """DRF authentication by Bearer key. Other Authorization schemes fall through to the session."""

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, ApiKey] | None:
        secret = bearer_secret(request.headers.get("Authorization", ""))
        if secret is None:
            return None
        key = key_for_secret(secret) if secret else None
        if key is None:
            raise exceptions.AuthenticationFailed(INVALID_KEY, code="invalid_api_key")
        return key.user, key

    def authenticate_header(self, request: Request) -> str:
        return WWW_AUTHENTICATE


def stream_caller(request: HttpRequest) -> tuple[AbstractBaseUser | None, ApiKey | None]:
    """Who follows a stream: the Bearer key's user, else the session's (None if neither)."""
    secret = bearer_secret(request.headers.get("Authorization", ""))
    if secret is None:
        user = request.user
        return (user if user.is_authenticated else None), None
    key = key_for_secret(secret) if secret else None
    return (key.user, key) if key else (None, None)


def active_key_ids(key_ids: list[UUID]) -> set[UUID]:
    """Which of `key_ids` are neither revoked nor their user's account deactivated."""
    return set(ApiKey.objects.active().filter(pk__in=key_ids).values_list("pk", flat=True))


open_keys = OpenCredentials(active_key_ids, "CHATSITE_API_KEY_RECHECK_SECONDS")


def until_revoked(
    frames: AsyncGenerator[bytes], key_id: UUID, on_revoked: Callable[[], None] | None = None
) -> AsyncGenerator[bytes]:
    """Pass a stream's frames on; end it with an error event once its key is revoked, after
    calling `on_revoked`."""
    return until_ended(frames, open_keys, key_id, on_revoked, KEY_REVOKED_EVENT)
