"""Django's cached_db sessions (SESSION_ENGINE), safe when the cache fails.

Sessions live in the database and are read from the cache (Redis with REDIS_URL, else the
process's memory), so a request needs no query for its session. Django's store fails every
request whose session the cache cannot store after a miss, and logs out by deleting the
database row before the cached copy: a cache that fails in between leaves that copy, which
logs the cookie in again once the cache is back. Here a miss the cache cannot store is
served from the database, a new session's key is checked against the database alone (so
logging in works), and the cached copy goes first: a logout the cache cannot record fails and
leaves the session whole, as the user then sees.
"""

import logging

from asgiref.sync import sync_to_async
from django.contrib.sessions.backends import cached_db, db
from django.contrib.sessions.base_session import AbstractBaseSession

from chatsite.auth_reads import session_row

logger = logging.getLogger(__name__)


class SessionCacheUnavailable(Exception):
    """A session cannot be ended now: its cached copy cannot be removed (the cache is down)."""

    message = (
        "Your session cannot be changed right now: the session store cannot be reached. "
        "Nothing was changed; try again in a moment."
    )


class SessionStore(cached_db.SessionStore):
    def _get_session_from_db(self) -> AbstractBaseSession | None:
        # Django's query, its SQL written once (auth_reads.py): read on every cache miss.
        session = session_row(self.model, self.session_key)
        if session is None:
            self._session_key = None  # as Django's: an unknown or expired key is not reused
        return session

    async def _aget_session_from_db(self) -> AbstractBaseSession | None:
        return await sync_to_async(self._get_session_from_db)()

    def load(self) -> dict:
        try:
            return super().load()
        except Exception:  # the cache failed after the database answered
            logger.warning("Session cache unavailable; read from the database", exc_info=True)
            return db.SessionStore.load(self)

    async def aload(self) -> dict:
        try:
            return await super().aload()
        except Exception:
            logger.warning("Session cache unavailable; read from the database", exc_info=True)
            return await db.SessionStore.aload(self)

    def exists(self, session_key: str) -> bool:
        # Asked for every new session key (a login): the database knows every session.
        try:
            return super().exists(session_key)
        except Exception:
            logger.warning("Session cache unavailable; asked the database", exc_info=True)
            return db.SessionStore.exists(self, session_key)

    async def aexists(self, session_key: str) -> bool:
        try:
            return await super().aexists(session_key)
        except Exception:
            logger.warning("Session cache unavailable; asked the database", exc_info=True)
            return await db.SessionStore.aexists(self, session_key)

    def delete(self, session_key: str | None = None) -> None:
        key = session_key or self.session_key
        if key is not None:
            try:
                self._cache.delete(self.cache_key_prefix + key)
            except Exception as error:  # the session stays whole
                raise SessionCacheUnavailable from error
        db.SessionStore.delete(self, session_key)

    async def adelete(self, session_key: str | None = None) -> None:
        key = session_key or self.session_key
        if key is not None:
            try:
                await self._cache.adelete(self.cache_key_prefix + key)
            except Exception as error:
                raise SessionCacheUnavailable from error
        await db.SessionStore.adelete(self, session_key)
