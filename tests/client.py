"""A logged-in API client for a running chatsite server, and SSE reading helpers."""

import asyncio
import json
import re
import secrets
import string
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from conversations.providers.sse import SSEDecoder

WAIT_SECONDS = 30.0


def wait_for(predicate, what: str):
    """Poll until `predicate()` is true; its result (a wait, not a timing check)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


@dataclass
class Event:
    id: int
    name: str
    data: dict


def csrf_secret() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))


def rest_once_closed[T](items: Iterator[T]) -> list[T]:
    """A stream's remaining items once it closes (a wait, not a timing check: open, its
    heartbeats would keep it going, a reply's stream until CHATSITE_STREAM_MAX_SECONDS, a
    /v1 completion's for good)."""
    rest: list[T] = []
    reader = threading.Thread(target=lambda: rest.extend(items), daemon=True)
    reader.start()
    reader.join(WAIT_SECONDS)
    assert not reader.is_alive(), "the stream is still open"
    return rest


def first_text(lines: Iterator[str]) -> str:
    """The text of a /v1 stream's first chunk that carries some (its role chunk has none)."""
    for line in lines:
        if line.startswith("data: {"):
            choices = json.loads(line.removeprefix("data: "))["choices"]
            if choices and choices[0]["delta"].get("content"):
                return choices[0]["delta"]["content"]
    raise AssertionError("the stream ended without text")


def form_login(base_url: str, username: str) -> dict[str, str]:
    """Log in through the login form as a browser does; its cookies (session, CSRF token)."""
    token = csrf_secret()
    with httpx.Client(base_url=base_url, cookies={"csrftoken": token}) as http:
        response = http.post(
            "/accounts/login/",
            data={
                "username": username,
                "password": f"{username}-password",
                "csrfmiddlewaretoken": token,
            },
        )
    assert response.status_code == 302, response.text
    return {"sessionid": response.cookies["sessionid"], "csrftoken": token}


def form_logout(base_url: str, cookies: dict[str, str]) -> None:
    with httpx.Client(base_url=base_url, cookies=cookies) as http:
        response = http.post(
            "/accounts/logout/", data={"csrfmiddlewaretoken": cookies["csrftoken"]}
        )
    assert response.status_code == 302, response.text


def is_logged_in(base_url: str, cookies: dict[str, str]) -> bool:
    with httpx.Client(base_url=base_url, cookies=cookies) as http:
        status = http.get("/api/conversations/").status_code
    assert status in (200, 401, 403), status
    return status == 200


class ChatClient:
    """httpx against the real server, authenticated by a real session cookie or an API key."""

    def __init__(
        self,
        base_url: str,
        session_key: str | None,
        api_key: str | None = None,
        password: str | None = None,
    ) -> None:
        self.password = password  # the user's, for what asks for it again (creating a key)
        token = csrf_secret()
        cookies = {"csrftoken": token}
        if session_key:
            cookies["sessionid"] = session_key
        headers = {"X-CSRFToken": token}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.http = httpx.Client(
            base_url=base_url, cookies=cookies, headers=headers, timeout=WAIT_SECONDS
        )

    def close(self) -> None:
        self.http.close()

    def new_conversation(self, **body: object) -> dict:
        response = self.http.post("/api/conversations/", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def send(self, conversation_id: str, content: str = "Hi", **body: object) -> httpx.Response:
        return self.http.post(
            f"/api/conversations/{conversation_id}/messages/", json={"content": content, **body}
        )

    def conversation(self, conversation_id: str) -> dict:
        response = self.http.get(f"/api/conversations/{conversation_id}/")
        assert response.status_code == 200, response.text
        return response.json()

    def message(self, conversation_id: str, message_id: str) -> dict:
        messages = self.conversation(conversation_id)["messages"]
        return next(m for m in messages if m["id"] == message_id)

    def wait_final(self, conversation_id: str, message_id: str) -> dict:
        """Poll until the reply is no longer pending or streaming (a wait, not a timing check)."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            message = self.message(conversation_id, message_id)
            if message["status"] not in ("pending", "streaming"):
                return message
            time.sleep(0.02)
        raise AssertionError(f"reply {message_id} never finished: {message}")

    def events(
        self, stream_url: str, headers: dict | None = None, limit: int | None = None
    ) -> list[Event]:
        """Read a reply's stream to its done/error event (or `limit` events), then hang up."""
        with self.http.stream("GET", stream_url, headers=headers or {}) as response:
            assert response.status_code == 200, response.read()
            assert response.headers["content-type"] == "text/event-stream"
            return list(read_events(response.iter_bytes(), limit))


def read_events(chunks: Iterator[bytes], limit: int | None = None) -> Iterator[Event]:
    decoder = SSEDecoder()
    count = 0
    for chunk in chunks:
        for sse in decoder.feed(chunk):
            if sse.event == "ping":
                continue  # a heartbeat (no id), as the comments it once was
            yield Event(int(sse.id), sse.event, json.loads(sse.data))
            count += 1
            if sse.event in ("done", "error") or (limit is not None and count >= limit):
                return


def text_of(events: list[Event]) -> str:
    return "".join(e.data["content"] for e in events if e.name == "delta")


def asgi_get_scope(path: str, headers: list[tuple[bytes, bytes]] | None = None) -> dict:
    """An ASGI scope for a GET of `path`, as daphne makes one, for calling the application
    in this process."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *(headers or [])],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


def asgi_receive():
    """An ASGI receive for a GET: its empty body, then a client that stays (no disconnect)."""
    body = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict:
        if body:
            return body.pop()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return receive


def new_key(client: ChatClient, name: str = "laptop") -> dict:
    """A new API key through the API, as `client`: its JSON, with the secret."""
    response = client.http.post("/api/keys/", json={"name": name, "password": client.password})
    assert response.status_code == 201, response.text
    assert response.headers["Cache-Control"] == "no-store"  # the secret is in it, this once
    return response.json()


def key_form_token_on(html: str) -> str:
    """The API key page's create form, as drawn in `html`: its hidden token."""
    return re.search(r'name="form_token" value="([0-9a-f-]+)"', html).group(1)
