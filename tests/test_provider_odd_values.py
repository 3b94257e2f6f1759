"""What a provider sends that no column can hold is cleaned, and the reply stored with its
reason: a NUL or half a character in an error's message, a finish reason longer than its
column, token counts that are no counts. And a final write that fails all the same (here a
database trigger refuses it) stores the reply as failed, with its text, at once.
"""

import pytest
from django.db import connection

from conversations.relay import UNSTORABLE
from tests.client import text_of
from tests.replies import ask, assert_failed, failed_reply
from tests.stub import Script, openai_chunk, openai_stream, sse


def test_an_error_message_with_a_nul_and_half_a_character_is_stored_as_the_reason(
    server, stub, alice_client
):
    # Valid JSON all the same; PostgreSQL's text refuses the NUL, SQLite the lone half.
    error = b'data: {"error": {"message": "Quota\\u0000 gone \\ud83d"}}\n\n'
    stub.queue(Script(steps=[openai_chunk(""), openai_chunk("Partial"), error]))
    reply, events, _, _ = failed_reply(alice_client)
    assert_failed(reply, events, "provider_error")
    assert reply["error"].endswith("reported an error: Quota\ufffd gone \ufffd")
    assert reply["content"] == text_of(events) == "Partial"


def test_a_refusal_whose_body_holds_a_nul_is_stored_with_the_providers_message(
    server, stub, alice_client
):
    body = b"Bad request:\x00 no such model"
    stub.queue(Script(status=400, headers={"Content-Type": "text/plain"}, steps=[body]))
    reply, events, _, _ = failed_reply(alice_client)
    assert_failed(reply, events, "bad_request")
    assert "Bad request:\ufffd no such model" in reply["error"]


def test_a_finish_reason_longer_than_its_column_is_cut(server, stub, alice_client):
    reason = "content_filter_" + "x" * 80
    stub.queue(openai_stream(["Fine"], finish_reason=reason))
    _, events, reply = ask(alice_client)
    assert events[-1].name == "done"
    assert (reply["status"], reply["content"]) == ("complete", "Fine")
    assert reply["finish_reason"] == reason[:50]


@pytest.mark.parametrize(
    ("reported", "stored"),
    [
        # Neither count is one: the reply's usage is estimated, as when none is sent.
        ({"prompt_tokens": -1, "completion_tokens": "5", "total_tokens": 4}, "estimated"),
        # Both counts are, the total is past any column: it is their sum.
        ({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 2**40}, (3, 4, 7)),
        # Both counts are, their sum is past any column: no total.
        ({"prompt_tokens": 2**31 - 1, "completion_tokens": 1}, (2**31 - 1, 1, None)),
        # A whole number written as a float is a count all the same.
        ({"prompt_tokens": 3.0, "completion_tokens": 4}, (3, 4, 7)),
        # Reasoning details that are no object are not read.
        ({"prompt_tokens": 3, "completion_tokens": 4, "completion_tokens_details": 9}, (3, 4, 7)),
    ],
    ids=["no-counts", "total-too-large", "sum-too-large", "whole-float", "details-not-an-object"],
)
def test_token_counts_that_are_no_counts_are_not_stored(
    server, stub, alice_client, reported, stored
):
    usage = sse({"choices": [], "usage": reported})
    steps = openai_stream(["Counted"], usage=None).steps
    stub.queue(Script(steps=[*steps[:-1], usage, steps[-1]]))  # the usage, then [DONE]
    _, _, reply = ask(alice_client)
    assert (reply["status"], reply["content"]) == ("complete", "Counted")
    counts = (reply["prompt_tokens"], reply["completion_tokens"], reply["total_tokens"])
    if stored == "estimated":
        assert reply["usage_source"] == "estimated"
        assert all(count > 0 for count in counts)
    else:
        assert (reply["usage_source"], counts) == ("provider", stored)


@pytest.fixture
def complete_replies_refused(server):
    """A database trigger that refuses storing any reply as complete (a constraint, a disk
    fault): the write fails however it is tried."""
    if connection.vendor == "sqlite":
        statements = [
            "CREATE TRIGGER refuse_complete BEFORE UPDATE ON conversations_message "
            "WHEN NEW.status = 'complete' BEGIN SELECT RAISE(ABORT, 'refused by test'); END",
        ]
        dropping = ["DROP TRIGGER refuse_complete"]
    else:
        statements = [
            "CREATE FUNCTION refuse_complete() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused by test'; END $$",
            "CREATE TRIGGER refuse_complete BEFORE UPDATE ON conversations_message "
            "FOR EACH ROW WHEN (NEW.status = 'complete') EXECUTE FUNCTION refuse_complete()",
        ]
        dropping = [
            "DROP TRIGGER refuse_complete ON conversations_message",
            "DROP FUNCTION refuse_complete()",
        ]
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    yield
    with connection.cursor() as cursor:
        for statement in dropping:
            cursor.execute(statement)


def test_a_reply_whose_final_write_fails_is_stored_as_failed_with_its_text(
    complete_replies_refused, stub, alice_client
):
    stub.queue(openai_stream(["Kept", " text"]))
    reply, events, _, _ = failed_reply(alice_client)
    assert_failed(reply, events, "internal_error")
    assert reply["error"] == UNSTORABLE
    assert reply["content"] == text_of(events) == "Kept text"
