"""chatsite as a real server process (daphne, the production server) for the tests.

The process shares the test database (a file for SQLite, the test database on PostgreSQL)
and talks to the provider stub over loopback. Tests reach it with a real httpx client.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

ARTIFACTS = Path(settings.BASE_DIR) / ".test-artifacts"
SECRET_PROVIDER_KEY = "sk-stub-SECRET-do-not-leak-4242"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    """The URL of the database the test run created, for the server process to share."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    return (
        f"postgres://{user}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    )


class ServerProcess:
    def __init__(self, stub_url: str, **env: str) -> None:
        self.port = free_port()
        self.env = {
            # The browser tests relax Django's async-safety check in the test process only;
            # the server must keep it, or it would hide sync ORM calls in async code.
            **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
            "DATABASE_URL": database_url(),
            "OPENAI_BASE_URL": f"{stub_url}/v1",
            "OPENAI_API_KEY": SECRET_PROVIDER_KEY,
            "OPENAI_MODELS": "stub-model,stub-other",
            "CHATSITE_RETRY_BACKOFF_SECONDS": "0.01",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        ARTIFACTS.mkdir(exist_ok=True)
        self.log_path = ARTIFACTS / f"server-{self.port}.log"
        # A port is reused from run to run: an earlier server's lines must not answer this
        # one's log waits. Restarts of this server append (start()).
        self.log_path.unlink(missing_ok=True)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ServerProcess":
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            # --proxy-headers as the README says to run it behind a proxy: a test can send
            # X-Forwarded-Proto (HTTPS) and X-Forwarded-For (another client's address).
            [sys.executable, "-m", "chatsite.server", "-b", "127.0.0.1", "-p", str(self.port),
             "--proxy-headers", "chatsite.asgi:application"],
            cwd=settings.BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._wait_until_listening()
        return self

    def _wait_until_listening(self) -> None:
        for _ in range(600):
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not start:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up, as in a crash."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextmanager
def serving(stub_url: str, **env: str) -> Iterator[ServerProcess]:
    """A server process for a test module, with the OpenAI-compatible provider off unless
    `env` configures it, so only the providers under test answer."""
    process = ServerProcess(stub_url, **{"OPENAI_API_KEY": "", "OPENAI_BASE_URL": "", **env})
    process.start()
    try:
        yield process
    finally:
        process.stop()
