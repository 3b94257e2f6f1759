"""Before the first token, 429/5xx/connect errors are retried with backoff; after it, never."""

from conversations.models import Message
from tests.stub import Script, json_error, openai_chunk, openai_stream


def test_429_with_retry_after_then_success_yields_one_reply(server, stub, alice_client):
    stub.queue(
        json_error(429, "Slow down", headers={"Retry-After": "0.2"}),
        openai_stream(["Fine", " now"]),
    )
    conversation = alice_client.new_conversation()
    body = alice_client.send(conversation["id"], "Hi").json()
    reply = alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])

    assert (reply["status"], reply["content"]) == ("complete", "Fine now")
    attempts = reply["metadata"]["attempts"]
    assert [a["outcome"] for a in attempts] == ["rate_limited", "ok"]
    assert attempts[0]["status"] == 429
    assert attempts[0]["retry_in_seconds"] >= 0.2  # Retry-After honoured over the 0.01 s backoff
    assert len(stub.requests) == 2
    assert Message.objects.filter(role="assistant", conversation_id=conversation["id"]).count() == 1


def test_server_errors_are_retried_until_the_attempts_run_out(server, stub, alice_client):
    stub.queue(*(json_error(503, "Overloaded") for _ in range(3)))
    conversation = alice_client.new_conversation()
    body = alice_client.send(conversation["id"], "Hi").json()
    reply = alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])
    assert reply["status"] == "failed"
    assert [a["outcome"] for a in reply["metadata"]["attempts"]] == ["provider_unavailable"] * 3
    assert len(stub.requests) == 3


def test_a_billed_attempt_counts_when_the_reply_fails_in_the_end(server, stub, alice_client):
    # DeepSeek cut the first attempt off short of capacity (billed), then answered 503 twice.
    cut_off = openai_stream([], usage=(4, 0), finish_reason="insufficient_system_resource")
    stub.queue(cut_off, json_error(503, "Overloaded"), json_error(503, "Overloaded"))
    conversation = alice_client.new_conversation()
    body = alice_client.send(conversation["id"], "Hi").json()
    reply = alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])
    assert reply["status"] == "failed" and len(stub.requests) == 3
    assert reply["prompt_tokens"] > 0  # an estimate of what was billed: the budgets count it


def test_nothing_is_retried_after_the_first_token(server, stub, alice_client):
    stub.queue(Script(steps=[openai_chunk("Half"), "drop"]), openai_stream(["Never sent"]))
    conversation = alice_client.new_conversation()
    body = alice_client.send(conversation["id"], "Hi").json()
    reply = alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])
    assert (reply["status"], reply["content"]) == ("failed", "Half")
    assert len(reply["metadata"]["attempts"]) == 1
    assert len(stub.requests) == 1
