"""Django's ModelBackend, with each signed-in user read from the cache, as sessions are.

Every request loads its user to check its session: a query before each reply's first token
(and twice per reply: the message POST and its stream), which the cache answers instead. A
user saved or deleted is dropped from the cache as soon as the change commits, so
deactivating someone or changing a password takes effect on their next request, in every
process sharing the cache (Redis). Up to USER_CACHE_SECONDS pass before a change is seen when
it bypasses save() (QuerySet.update), or when it is made by another process (a management
command) while the cache is each process's own memory (no REDIS_URL). A cache that fails is
passed over: the database answers.
"""

import contextlib
import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from chatsite.auth_reads import user_row

logger = logging.getLogger(__name__)

USER_CACHE_SECONDS = 60


def cache_key(user_id: object) -> str:
    return f"chatsite:user:{user_id}"


class CachedModelBackend(ModelBackend):
    def get_user(self, user_id: object) -> AbstractBaseUser | None:
        try:
            user = cache.get(cache_key(user_id))
        except Exception:
            logger.warning("User cache unavailable; read from the database", exc_info=True)
            return self.user_from_database(user_id)
        if user is None and (user := self.user_from_database(user_id)) is not None:
            with contextlib.suppress(Exception):  # not kept: the next request asks again
                cache.set(cache_key(user_id), user, USER_CACHE_SECONDS)
        return user

    async def aget_user(self, user_id: object) -> AbstractBaseUser | None:
        try:
            user = await cache.aget(cache_key(user_id))
        except Exception:
            logger.warning("User cache unavailable; read from the database", exc_info=True)
            return await sync_to_async(self.user_from_database)(user_id)
        if user is None and (user := await sync_to_async(self.user_from_database)(user_id)):
            with contextlib.suppress(Exception):
                await cache.aset(cache_key(user_id), user, USER_CACHE_SECONDS)
        return user

    def user_from_database(self, user_id: object) -> AbstractBaseUser | None:
        """ModelBackend.get_user, its query's SQL written once (auth_reads.py)."""
        user = user_row(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None


def forget_user(sender: type, instance: AbstractBaseUser, **kwargs: object) -> None:
    """Drop a changed user's cached copy once the change commits (at once outside a
    transaction): dropped earlier, a request reading the old row could cache it again."""
    key = cache_key(instance.pk)

    def forget() -> None:
        try:
            cache.delete(key)
        except Exception:  # expires by itself within USER_CACHE_SECONDS
            logger.warning("User cache unavailable; user %s may be stale", instance.pk)

    transaction.on_commit(forget)


def connect_signals() -> None:
    """Called once by the app's ready(): processes that never serve a request (management
    commands changing passwords, say) must still drop what the servers cached in Redis."""
    post_save.connect(forget_user, sender=settings.AUTH_USER_MODEL)
    post_delete.connect(forget_user, sender=settings.AUTH_USER_MODEL)
