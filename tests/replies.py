"""Getting replies in tests, and checking what was stored.

A provider read directly, a message sent through the chat API (and its reply followed, held
open, or failed), a request to the OpenAI-compatible endpoint (/v1), a producer run in the
test's own process; then the stored reply's one shape, whichever protocol produced it.
"""

import asyncio
import json

import httpx

from conversations.apikeys import create_key
from conversations.models import Message
from conversations.providers.base import ChatRequest, ModelChoice, Provider, ProviderEvent
from conversations.providers.http import client
from conversations.providers.openai import OpenAICompatibleProvider
from conversations.reply_job import ReplyJob
from tests.client import ChatClient, Event, read_events, wait_for
from tests.stub import Gate, gated_stream
from tests.stub_server import ProviderStub

RETRY_ATTEMPTS = 3  # CHATSITE_RETRY_ATTEMPTS' default, which the test servers use


# --- a provider read directly, a producer run here ----------------------------------------
def read_provider(provider: Provider, model: str = "stub-model", **request: object) -> list:
    """Run one request through a provider against the stub; a ProviderError propagates."""

    async def collect() -> list[ProviderEvent]:
        chat = ChatRequest(model=model, messages=[{"role": "user", "content": "Hi"}], **request)
        try:
            return [event async for event in provider.stream(chat)]
        finally:
            await client().aclose()  # this loop's shared client: its connections end with it

    return asyncio.run(collect())


def stub_job(reply: Message, stub: ProviderStub) -> ReplyJob:
    """A reply's request to the provider stub over OpenAI's protocol, for a producer run in
    this process (whose configured models may be the demo's)."""
    provider = OpenAICompatibleProvider(f"{stub.url}/v1", "sk-stub-job")
    request = ChatRequest(model="stub-model", messages=[{"role": "user", "content": "Hi"}])
    return ReplyJob(reply.pk, ModelChoice("openai", "stub-model", "Stub"), provider, request)


# --- through the chat API -------------------------------------------------------------------
def ask(client: ChatClient, content: str = "Hi", **body: object) -> tuple[dict, list[Event], dict]:
    """Post a message and follow its stream; the conversation, events and stored reply."""
    conversation = client.new_conversation()
    response = client.send(conversation["id"], content, **body)
    assert response.status_code == 201, response.text
    posted = response.json()
    events = client.events(posted["stream_url"])
    reply = client.wait_final(conversation["id"], posted["assistant_message"]["id"])
    return conversation, events, reply


def send_in_new_conversation(client, content: str = "Hi") -> tuple[dict, dict]:
    """A new conversation with one message; returns the conversation and the 201 body."""
    conversation = client.new_conversation()
    response = client.send(conversation["id"], content)
    assert response.status_code == 201, response.text
    return conversation, response.json()


def failed_reply(client, wait_first: bool = False) -> tuple[dict, list, dict, str]:
    """Send a message, read its stream to the end; return the reply, events, body, raw exposure.

    The raw exposure is everything a browser could see: the POST answer, the stream, the
    conversation as the API and as the chat page show it. With wait_first, the stream is
    read once the reply is final (replayed from its event log), so a failure that never
    comes cannot hide behind the stream's heartbeats.
    """
    conversation, body = send_in_new_conversation(client)
    reply_id = body["assistant_message"]["id"]
    if wait_first:
        client.wait_final(conversation["id"], reply_id)
    with client.http.stream("GET", body["stream_url"]) as response:
        assert response.status_code == 200
        raw_stream = b"".join(response.iter_bytes()).decode()
    events = list(read_events(iter([raw_stream.encode()])))
    reply = client.wait_final(conversation["id"], reply_id)
    detail = client.http.get(f"/api/conversations/{conversation['id']}/").text
    page = client.http.get(f"/c/{conversation['id']}/").text
    exposure = "\n".join([json.dumps(body), raw_stream, detail, page])
    return reply, events, body, exposure


def assert_failed(reply: dict, events: list, code: str) -> None:
    assert reply["status"] == "failed"
    assert reply["error_code"] == code
    assert reply["error"], "the stored error says what went wrong"
    assert reply["completed_at"] is not None
    last = events[-1]
    assert last.name == "error"
    assert set(last.data) == {"error", "message"}
    assert last.data["error"] == {"code": code, "message": reply["error"]}
    assert last.data["message"]["id"] == reply["id"]
    assert last.data["message"]["status"] == "failed"
    assert last.data["message"]["error"] == reply["error"]
    assert [e.name for e in events[:-1]] == ["delta"] * (len(events) - 1)


def send_held_reply(client, stub: ProviderStub, tokens: list[str]) -> dict:
    """Send a message whose reply streams `tokens` and then waits at a gate that never opens
    (a reply still generating); the POST's answer, once the stub has reached the gate."""
    gate = Gate()
    stub.queue(gated_stream(tokens, gate))
    conversation = client.new_conversation()
    body = client.send(conversation["id"], "Go").json()
    gate.wait_reached()
    return body


# --- the stored reply ----------------------------------------------------------------------
def assert_stored_reply(
    reply: dict,
    content: str,
    usage: tuple[int, int] | None,
    status: str = "complete",
    finish_reason: str = "stop",
) -> None:
    """The same stored shape, whichever protocol produced the reply. `usage` is the provider's
    (prompt, completion) counts; None means none arrived, so chatsite's estimate is stored."""
    assert reply["content"] == content
    assert reply["status"] == status
    assert reply["finish_reason"] == finish_reason
    counts = (reply["prompt_tokens"], reply["completion_tokens"], reply["total_tokens"])
    if usage is None and status == "failed" and not content:
        # Failed before any text with no count from the provider: refused, so not billed.
        assert (reply["usage_source"], counts) == ("estimated", (0, 0, 0))
    elif usage is None:
        assert reply["usage_source"] == "estimated"
        assert counts[0] > 0, counts  # the prompt was sent
        assert (counts[1] > 0) == bool(content), counts  # estimated from the stored text
        assert counts[2] == counts[0] + counts[1], counts
    else:
        assert reply["usage_source"] == "provider"
        assert counts == (usage[0], usage[1], usage[0] + usage[1])


# --- through /v1 ------------------------------------------------------------------------------
MODEL = "openai:stub-model"
HISTORY = [
    {"role": "system", "content": "Answer in one word."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello"},
    {"role": "user", "content": [{"type": "text", "text": "How"}, {"type": "text", "text": "?"}]},
]


def stored_reply() -> Message:
    """The reply chatsite generated (not an earlier answer from the client's history), final."""
    replies = Message.objects.filter(role="assistant").exclude(provider="")
    final = replies.exclude(status__in=Message.ACTIVE_STATUSES)
    return wait_for(final.first, "the stored reply")


# What a client of the OpenAI-compatible endpoint sets; each protocol names them its own way.
SAMPLING = {"temperature": 0.3, "top_p": 0.9, "max_tokens": 55, "stop": ["END"]}


def post_over_v1(base_url: str, user: object, model: str, **body: object) -> httpx.Response:
    """A user message to chatsite's /v1/chat/completions, whole, with a new API key of `user`."""
    _, secret = create_key(user, "protocol test")
    request = {"model": model, "messages": [{"role": "user", "content": "Hi"}], **body}
    return httpx.post(
        f"{base_url}/v1/chat/completions",
        json=request,
        headers={"Authorization": f"Bearer {secret}"},
        timeout=30,
    )


def complete_over_v1(base_url: str, user: object, model: str, **body: object) -> dict:
    """One whole completion through /v1: the provider was asked with SAMPLING (and whatever
    else `body` sets)."""
    response = post_over_v1(base_url, user, model, **{**SAMPLING, **body})  # body overrides
    assert response.status_code == 200, response.text
    return response.json()


def openai_only_options_refused(
    base_url: str, stub: ProviderStub, user: object, model: str
) -> None:
    """/v1 refuses OpenAI's own options (AS_IS_OPTIONS) for a model whose provider does not
    take them: 400 naming each, nothing stored, the provider not asked."""
    asked_before = len(stub.requests)
    extra = {
        "seed": 7,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.5,
        "response_format": {"type": "json_object"},
        "logit_bias": {"50256": -100},
        "reasoning_effort": "low",
    }
    response = post_over_v1(base_url, user, model, **extra)
    assert response.status_code == 400, response.text
    message = response.json()["error"]["message"]
    for name in extra:
        assert f"{name}: Not supported by" in message, message
    assert not Message.objects.exists() and len(stub.requests) == asked_before
