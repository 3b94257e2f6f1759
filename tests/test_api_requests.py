"""How the API reads a request beyond its body: a path missing its trailing slash, and an
Accept header naming what a stream or a file is."""

import httpx

from conversations.models import Conversation
from tests.replies import HISTORY, MODEL
from tests.stub import openai_stream


def test_a_write_without_its_trailing_slash_is_sent_on_with_its_method_and_body(
    server, alice, alice_client
):
    moved = alice_client.http.post("/api/conversations", json={"title": "Budget"})
    assert moved.status_code == 308  # not 301, which clients repeat as a GET of the list
    assert moved.headers["Location"] == "/api/conversations/"
    assert not Conversation.objects.exists()

    created = alice_client.http.post(
        "/api/conversations", json={"title": "Budget"}, follow_redirects=True
    )
    assert created.status_code == 201, created.text
    conversation = Conversation.objects.get(owner=alice)
    assert conversation.title == "Budget"
    renamed = alice_client.http.patch(
        f"/api/conversations/{conversation.id}", json={"title": "Budget 2027"}
    )
    assert renamed.status_code == 308
    assert renamed.headers["Location"] == f"/api/conversations/{conversation.id}/"
    # A read is still sent on as before: browsers and clients follow it.
    assert alice_client.http.get("/api/conversations").status_code == 301


def test_streams_and_files_are_sent_whatever_accept_names(server, stub, alice, alice_key):
    stub.queue(openai_stream(["Streamed"]))
    headers = {"Authorization": f"Bearer {alice_key}"}
    body = {"model": MODEL, "messages": HISTORY[1:2], "stream": True}
    with httpx.stream(
        "POST",
        f"{server.url}/v1/chat/completions",
        json=body,
        headers={**headers, "Accept": "text/event-stream"},
    ) as streamed:
        assert streamed.status_code == 200, streamed.read()
        assert streamed.headers["content-type"].startswith("text/event-stream")
        assert b"Streamed" in streamed.read()
    conversation = Conversation.objects.get(owner=alice)

    for path, accept in [
        (f"/api/conversations/{conversation.id}/export/?format=markdown", "text/markdown"),
        ("/api/export/?format=jsonl", "application/jsonl"),
    ]:
        exported = httpx.get(f"{server.url}{path}", headers={**headers, "Accept": accept})
        assert exported.status_code == 200, exported.text
        assert exported.headers["content-type"].startswith(accept)
        assert "Streamed" in exported.text
    refused = httpx.post(
        f"{server.url}/v1/chat/completions",
        json={**body, "temperature": 3},
        headers={**headers, "Accept": "text/event-stream"},
    )
    assert refused.status_code == 400  # an error is JSON all the same
    assert refused.json()["error"]["param"] == "temperature"
