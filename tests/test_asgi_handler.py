"""chatsite's ASGI handler (chatsite/asgi_handler.py): Django's request lifecycle, lighter for a
server of long streams, and sending every byte of a streamed response."""

import asyncio
import contextlib
import gc
from collections.abc import Iterator

import pytest

from chatsite.asgi_handler import StreamingASGIHandler
from tests.chats import add_chat
from tests.client import asgi_get_scope, asgi_receive, text_of


async def get(app, path: str, send_fails: Exception | None = None) -> list[dict]:
    """One GET through the ASGI application, in this process; the messages it sent.
    With send_fails, sending raises that error, as when the server cannot write."""
    sent: list[dict] = []

    async def send(message: dict) -> None:
        if send_fails is not None:
            raise send_fails
        sent.append(message)

    await app(asgi_get_scope(path), asgi_receive(), send)
    return sent


@contextlib.contextmanager
def cycle_garbage() -> Iterator[list]:
    """The objects the cycle collector finds unreachable after the block (collected first)."""
    found: list = []
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)  # unreachable objects are kept in gc.garbage to be seen
    try:
        yield found
        gc.collect()
        found.extend(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def test_a_request_that_ends_normally_leaves_no_exception_for_the_cycle_collector():
    # Django's handler ends each request by raising an exception class it defines for that
    # request: a class, an ExceptionGroup and a traceback of frames per request, which only
    # the cycle collector frees, and which with hundreds of open streams it must scan.
    app = StreamingASGIHandler()
    asyncio.run(get(app, "/api/conversations/"))  # the first imports the views

    async def requests() -> list[list[dict]]:
        return [await get(app, "/api/conversations/") for _ in range(3)]

    with cycle_garbage() as left:
        answers = asyncio.run(requests())
    assert [answer[0]["status"] for answer in answers] == [401, 401, 401]
    assert not [o for o in left if isinstance(o, BaseException | type)], "exceptions or classes"


def test_a_streamed_part_larger_than_a_chunk_arrives_whole(alice, alice_client, server):
    # A finished reply is streamed in one part; past Django's chunk size it goes in pieces.
    content = "".join(f"line {n}: ünïcode ✓\n" for n in range(8_000))
    assert len(content.encode()) > 2 * StreamingASGIHandler.chunk_size
    conversation = add_chat(alice, "Long", content=content)
    reply = conversation.messages.get(role="assistant")
    events = alice_client.events(f"/api/messages/{reply.pk}/stream/")
    assert text_of(events) == content
    assert events[-1].name == "done"


def test_an_error_sending_the_response_reaches_the_server_as_itself():
    # Raised inside the request's TaskGroup it comes wrapped in an ExceptionGroup; Django's
    # handler unwraps a single one, so the server logs (and daphne answers) the error itself.
    app = StreamingASGIHandler()
    with pytest.raises(ConnectionResetError, match="the client is gone"):
        asyncio.run(get(app, "/api/conversations/", ConnectionResetError("the client is gone")))
