"""Bad input gets a 400 with a clear JSON message, and writes nothing.

The server process writes to the same database, so counting rows here (transactional_db)
sees whatever the request stored.
"""

import concurrent.futures
import json
import sqlite3
import uuid

import pytest
from django.conf import settings

from conversations.models import Conversation, Message
from tests.stub import openai_stream

MAX_CHARS = settings.CHATSITE_MAX_MESSAGE_CHARS  # the test servers use the default


def rows() -> tuple[int, int]:
    return Conversation.objects.count(), Message.objects.count()


@pytest.fixture
def conversation(server, alice_client) -> dict:
    return alice_client.new_conversation(title="Kept as it was")


def post_raw(client, url: str, content: bytes, **headers: str):
    return client.http.post(
        url, content=content, headers={"Content-Type": "application/json", **headers}
    )


def assert_clear_error(response, status: int = 400, mentions: tuple[str, ...] = ()) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"]
    assert error["message"].strip()
    for word in mentions:
        assert word in error["message"], (word, error["message"])
    return error


BAD_MESSAGES = {
    "missing_content": ({}, ("content", "required")),
    "empty_content": ({"content": ""}, ("content",)),
    "whitespace_content": ({"content": "  \n\t "}, ("empty",)),
    "null_content": ({"content": None}, ("content", "null")),
    "list_content": ({"content": ["Hi"]}, ("content",)),
    "object_content": ({"content": {"text": "Hi"}}, ("content",)),
    "boolean_content": ({"content": True}, ("content",)),
    "number_content": ({"content": 42}, ("content", "text")),
    "oversize_content": ({"content": "x" * (MAX_CHARS + 1)}, (f"{MAX_CHARS}",)),
    "unknown_model": (
        {"content": "Hi", "model": "openai:no-such-model"},
        ("no-such-model", "openai:stub-model", "openai:stub-other"),
    ),
    "model_without_provider": ({"content": "Hi", "model": "stub-model"}, ("Valid models",)),
    "model_not_a_string": ({"content": "Hi", "model": ["openai:stub-model"]}, ("model",)),
    "bad_client_id": ({"content": "Hi", "client_id": "not-a-uuid"}, ("client_id",)),
    "number_client_id": ({"content": "Hi", "client_id": 5}, ("client_id", "valid UUID")),
}


@pytest.mark.parametrize("case", BAD_MESSAGES)
def test_bad_message_is_a_400_and_writes_nothing(conversation, stub, alice_client, case):
    body, mentions = BAD_MESSAGES[case]
    before = rows()
    response = alice_client.http.post(
        f"/api/conversations/{conversation['id']}/messages/", json=body
    )
    assert_clear_error(response, 400, mentions)
    assert rows() == before
    assert stub.requests == [], "no provider was called"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"content": "Hi"', id="truncated"),
        pytest.param(b"{'content': 'Hi'}", id="single_quotes"),
        pytest.param(b'{"content": "Hi",}', id="trailing_comma"),
        pytest.param(b"\xff\xfe not utf-8", id="not_utf8"),
        pytest.param(b'{"content": NaN}', id="nan"),
    ],
)
def test_malformed_json_is_a_400_and_writes_nothing(conversation, stub, alice_client, raw):
    before = rows()
    response = post_raw(alice_client, f"/api/conversations/{conversation['id']}/messages/", raw)
    assert_clear_error(response, 400)
    assert rows() == before
    assert stub.requests == []


@pytest.mark.parametrize(
    "payload",
    ['"Hi"', "42", '["Hi"]', "null", "true"],
    ids=["string", "number", "list", "null", "bool"],
)
def test_json_that_is_not_an_object_is_a_400(conversation, stub, alice_client, payload):
    before = rows()
    url = f"/api/conversations/{conversation['id']}/messages/"
    response = post_raw(alice_client, url, payload.encode())
    assert_clear_error(response, 400)
    assert rows() == before
    assert stub.requests == []


def test_invalid_idempotency_key_is_a_400_and_writes_nothing(conversation, stub, alice_client):
    before = rows()
    response = alice_client.http.post(
        f"/api/conversations/{conversation['id']}/messages/",
        json={"content": "Hi"},
        headers={"Idempotency-Key": "retry-1"},
    )
    assert_clear_error(response, 400, ("Idempotency-Key",))
    assert rows() == before
    assert stub.requests == []


def test_idempotency_key_that_differs_from_client_id_is_a_400(conversation, stub, alice_client):
    before = rows()
    response = alice_client.http.post(
        f"/api/conversations/{conversation['id']}/messages/",
        json={"content": "Hi", "client_id": str(uuid.uuid4())},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert_clear_error(response, 400, ("Idempotency-Key", "client_id"))
    assert rows() == before
    assert stub.requests == []


@pytest.mark.parametrize(
    ("query", "mentions"),
    [
        ("/api/conversations/?updated_after=", ("updated_after", "leave the parameter out")),
        ("/api/conversations/?page_size=many", ("page_size", "whole number")),
        ("/api/conversations/?page_size=0", ("page_size",)),
        ("/api/conversations/?page=abc", ("page", "whole number")),
        ("/api/conversations/?page=0", ("page", "whole number")),
        ("/api/conversations/?page=-1", ("page", "whole number")),
        ("/api/conversations/?page=", ("page", "whole number")),
        ("/api/export/?format=", ("format", "leave the parameter out")),
    ],
    ids=[
        "empty_date",
        "page_size_not_a_number",
        "page_size_zero",
        "page_not_a_number",
        "page_zero",
        "page_negative",
        "page_empty",
        "empty_format",
    ],
)
def test_bad_query_parameter_is_a_400_not_quietly_ignored(server, alice_client, query, mentions):
    assert_clear_error(alice_client.http.get(query), 400, mentions)


def test_a_page_past_the_last_is_not_found_and_last_is_the_last(server, alice_client):
    alice_client.new_conversation()
    past = alice_client.http.get("/api/conversations/?page=2")
    assert_clear_error(past, 404, ("page",))
    assert len(alice_client.http.get("/api/conversations/?page=last").json()["results"]) == 1
    far = alice_client.http.get("/api/conversations/?page=" + "9" * 5000)  # past int()'s reach
    assert_clear_error(far, 404, ("No page 999999999…: past the last (1).",))


def test_a_time_beyond_the_calendar_in_the_sites_time_zone_is_a_400(
    start_server, alice, client_for
):
    # Year 1 at midnight in Shanghai is still year 0 in UTC, which Python cannot hold.
    shanghai = start_server(TIME_ZONE="Asia/Shanghai")
    client = client_for(alice, shanghai.url)
    for far in ("0001-01-01T00:00:00", "0001-01-01T00:00:00+08:00"):
        response = client.http.get("/api/conversations/", params={"updated_after": far})
        assert_clear_error(response, 400, ("updated_after", "Too far"))
    a_day_later = client.http.get("/api/conversations/?updated_after=0001-01-02T00:00:00")
    assert a_day_later.status_code == 200, a_day_later.text


def test_numbers_of_thousands_of_digits_are_read_as_numbers_not_a_500(
    conversation, stub, alice_client
):
    # Python refuses to read a number of over 4,300 digits (int()), so none is read whole.
    for _ in range(3):
        alice_client.new_conversation()
    page = alice_client.http.get("/api/conversations/?page_size=" + "9" * 5000)
    assert page.status_code == 200, page.text
    assert len(page.json()["results"]) == 4  # the largest page size holds them all
    stub.queue(openai_stream(["Bonjour"]))
    reply = alice_client.send(conversation["id"]).json()["assistant_message"]
    alice_client.wait_final(conversation["id"], reply["id"])
    # A Last-Event-ID no stream ever sent is no position at all: the reply from its start.
    from_header = alice_client.events(reply["stream_url"], {"Last-Event-ID": "1" * 5000})
    from_query = alice_client.events(reply["stream_url"] + "?last_event_id=" + "9" * 5000)
    for events in (from_header, from_query):
        assert [(e.id, e.name) for e in events] == [(1, "delta"), (2, "done")]
        assert events[0].data["content"] == "Bonjour"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_a_reply_stream_is_read_with_get_only(
    conversation, stub, alice_client, alice_key, key_client, method
):
    reply = alice_client.send(conversation["id"]).json()["assistant_message"]
    alice_client.wait_final(conversation["id"], reply["id"])
    for client in (alice_client, key_client(alice_key)):  # a session (with CSRF), an API key
        response = client.http.request(method, reply["stream_url"])
        assert_clear_error(response, 405, (method, "GET"))
        assert response.headers["Allow"] == "GET"


def test_an_api_key_name_must_be_text(server, alice_client):
    body = {"name": 5, "password": alice_client.password}
    response = alice_client.http.post("/api/keys/", json=body)
    assert_clear_error(response, 400, ("name", "Must be text"))
    assert not alice_client.http.get("/api/keys/").json()["results"]


def test_message_of_exactly_the_maximum_length_is_accepted(conversation, stub, alice_client):
    # The boundary of the oversize case above: one character less is fine.
    response = alice_client.send(conversation["id"], "y" * MAX_CHARS)
    assert response.status_code == 201, response.text
    reply = alice_client.wait_final(conversation["id"], response.json()["assistant_message"]["id"])
    assert reply["status"] == "complete"
    assert stub.requests[0].json["messages"][-1]["content"] == "y" * MAX_CHARS


@pytest.mark.parametrize(
    "field",
    # Oversize content, and a fine message padded with an unknown field: the body's size decides.
    ["content", "padding"],
)
def test_body_over_the_upload_limit_is_a_413(conversation, stub, alice_client, field):
    body = {"content": "Hi", field: "z" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)}
    before = rows()
    url = f"/api/conversations/{conversation['id']}/messages/"
    response = post_raw(alice_client, url, json.dumps(body).encode())
    error = assert_clear_error(response, 413, ("larger than",))
    assert error["code"] == "too_large"
    assert rows() == before
    assert stub.requests == []


def test_form_encoded_body_is_refused_as_unsupported(conversation, alice_client):
    before = rows()
    response = alice_client.http.post(
        f"/api/conversations/{conversation['id']}/messages/", data={"content": "Hi"}
    )
    assert_clear_error(response, 415)
    assert rows() == before


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"model": "openai:no-such-model"}, ("Valid models",)),
        ({"title": "t" * 201}, ("title",)),
        ({"title": ["not", "text"]}, ("title",)),
        ({"title": 42}, ("title", "text")),
    ],
    ids=["unknown_model", "long_title", "title_not_text", "title_a_number"],
)
def test_bad_new_conversation_is_a_400_and_writes_nothing(server, alice_client, body, mentions):
    before = rows()
    response = alice_client.http.post("/api/conversations/", json=body)
    assert_clear_error(response, 400, mentions)
    assert rows() == before


@pytest.mark.parametrize(
    "body", [{}, {"title": "t" * 201}, {"title": None}], ids=["missing", "too_long", "null"]
)
def test_bad_rename_is_a_400_and_changes_nothing(conversation, alice_client, body):
    response = alice_client.http.patch(f"/api/conversations/{conversation['id']}/", json=body)
    assert_clear_error(response, 400, ("title",))
    assert alice_client.conversation(conversation["id"])["title"] == "Kept as it was"


@pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
    reason="holds SQLite's write lock; PostgreSQL locks rows, not the database",
)
def test_a_locked_database_is_a_503_that_saves_nothing(start_server, client_for, alice):
    client = client_for(alice, base_url=start_server(SQLITE_BUSY_TIMEOUT="0").url)
    conversation = client.new_conversation()
    before = rows()
    locker = sqlite3.connect(settings.DATABASES["default"]["NAME"], isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        response = client.send(conversation["id"], "Hello while the database is busy")
        assert_clear_error(response, 503, mentions=("busy",))
        assert response.headers["retry-after"] == "1"
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert rows() == before
    assert client.send(conversation["id"], "Hello again").status_code == 201


def test_each_message_post_is_validated_on_its_own(server, stub, alice_client):
    """One serializer validates every message POST (conversations/api/serializers.py,
    validated): each request's values and errors are its own, one after another and at once."""
    refused = {  # each refused for its own field
        "content": ({"content": " "}, "empty"),
        "model": ({"content": "Hi", "model": "openai:no-such-model"}, "no-such-model"),
        "client_id": ({"content": "Hi", "client_id": "not-a-uuid"}, "client_id"),
    }

    def send(case: str) -> tuple[str, object]:
        body = refused[case][0] if case in refused else {"content": f"Asked by {case}"}
        url = f"/api/conversations/{alice_client.new_conversation()['id']}/messages/"
        return case, alice_client.http.post(url, json=body)

    def assert_own(case: str, response) -> None:
        if case in refused:
            error = assert_clear_error(response, 400, (refused[case][1],))
            assert set(error["fields"]) == {case}, error
        else:
            assert response.status_code == 201, response.text
            assert response.json()["user_message"]["content"] == f"Asked by {case}"

    for case in ["content", "first", "model", "second", "client_id", "third"]:
        assert_own(*send(case))
    at_once = [*refused, *(f"at once {i}" for i in range(6))] * 2
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(at_once)) as pool:
        for case, response in pool.map(send, at_once):
            assert_own(case, response)
    asked = Message.objects.filter(role=Message.Role.USER).values_list("content", flat=True)
    assert sorted(asked) == sorted(
        [f"Asked by {case}" for case in ("first", "second", "third")]
        + [f"Asked by at once {i}" for i in range(6)] * 2
    )
