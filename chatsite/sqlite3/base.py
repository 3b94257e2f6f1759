"""Django's SQLite backend, with the process's writers queued on a lock instead of polling.

SQLite lets one connection write at a time (every atomic block here is BEGIN IMMEDIATE). A
connection that finds the file locked polls: SQLite's busy handler sleeps and retries, up to
100 ms between tries once it has waited a while. Under load (hundreds of message POSTs
queued behind one writer) the file then sits unlocked while its waiters sleep, and some wait
out the busy timeout and fail. Here a transaction first takes a lock shared by the process's
connections to the same file: one waits on it and starts the moment the previous writer
commits. Other processes still meet at SQLite's lock, one writer each. Waiting for the lock
is bounded by the busy timeout too, and fails with SQLite's "database is locked" error.
"""

import threading

from django.db import OperationalError
from django.db.backends.sqlite3 import base

_write_locks: dict[str, threading.Lock] = {}
_locks_lock = threading.Lock()


def write_lock(name: str) -> threading.Lock:
    """The one lock of this process's writers to the database file `name`."""
    with _locks_lock:
        return _write_locks.setdefault(name, threading.Lock())


class DatabaseWrapper(base.DatabaseWrapper):
    holds_write_lock = False

    def _start_transaction_under_autocommit(self) -> None:
        lock = write_lock(str(self.settings_dict["NAME"]))
        timeout = self.settings_dict["OPTIONS"].get("timeout", 5)
        if not lock.acquire(timeout=timeout):
            raise OperationalError("database is locked")  # as SQLite says past its timeout
        self.holds_write_lock = True
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_write_lock()
            raise

    def _commit(self) -> None:
        try:
            super()._commit()
        finally:
            self._release_write_lock()

    def _rollback(self) -> None:
        try:
            super()._rollback()
        finally:
            self._release_write_lock()

    def _close(self) -> None:
        try:
            super()._close()
        finally:
            self._release_write_lock()

    def _release_write_lock(self) -> None:
        if self.holds_write_lock:
            self.holds_write_lock = False
            write_lock(str(self.settings_dict["NAME"])).release()
