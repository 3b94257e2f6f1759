"""A body sent in chunks, without a Content-Length (a client streaming its upload), is read
whole, as one with a length is; over the size limit it is a 413 all the same."""

import json

from django.conf import settings

from conversations.models import Conversation, Message
from tests.stub import openai_stream


def chunked(document: object, size: int = 7):
    """The document's JSON in pieces: httpx sends an iterator with Transfer-Encoding: chunked."""
    raw = json.dumps(document).encode()
    return iter([raw[i : i + size] for i in range(0, len(raw), size)])


def post_chunked(client, url: str, document: object):
    response = client.http.post(
        url, content=chunked(document), headers={"Content-Type": "application/json"}
    )
    sent = response.request.headers
    assert sent.get("transfer-encoding") == "chunked" and "content-length" not in sent
    return response


def test_a_chunked_body_creates_what_it_says(server, alice, alice_client):
    created = post_chunked(alice_client, "/api/conversations/", {"title": "Budget"})
    assert created.status_code == 201, created.text
    assert Conversation.objects.get(owner=alice).title == "Budget"

    renamed = alice_client.http.patch(
        f"/api/conversations/{created.json()['id']}/",
        content=chunked({"title": "Budget 2027"}),
        headers={"Content-Type": "application/json"},
    )
    assert renamed.status_code == 200, renamed.text
    assert Conversation.objects.get(owner=alice).title == "Budget 2027"


def test_a_chunked_message_is_stored_and_answered(server, stub, alice_client):
    stub.queue(openai_stream(["Hello", " there"]))
    conversation = alice_client.new_conversation()
    url = f"/api/conversations/{conversation['id']}/messages/"
    posted = post_chunked(alice_client, url, {"content": "Sent in pieces"})
    assert posted.status_code == 201, posted.text
    reply = alice_client.wait_final(conversation["id"], posted.json()["assistant_message"]["id"])
    assert reply["content"] == "Hello there"
    assert Message.objects.get(pk=posted.json()["user_message"]["id"]).content == "Sent in pieces"


def test_a_chunked_body_over_the_upload_limit_is_a_413_that_stores_nothing(
    server, stub, alice_client
):
    conversation = alice_client.new_conversation()
    padding = "z" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    url = f"/api/conversations/{conversation['id']}/messages/"
    response = post_chunked(alice_client, url, {"content": "Hi", "padding": padding})
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "too_large"
    assert Message.objects.count() == 0
    assert stub.requests == []
