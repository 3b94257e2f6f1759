"""Sampling and OpenAI's own options sent to the OpenAI-compatible endpoint: passed on to an
OpenAI-compatible provider as they are, and kept with the reply; unset ones not sent."""

import httpx

from tests.replies import HISTORY, MODEL, stored_reply
from tests.stub import openai_stream


def test_sampling_options_are_passed_on_and_kept_with_the_reply(sdk, stub):
    stub.queue(openai_stream(["Sure"]))
    sdk.chat.completions.create(
        model=MODEL, messages=HISTORY[1:2], temperature=0.2, top_p=0.5, max_tokens=9, stop="X"
    )
    sent = stub.requests[-1].json
    options = {"temperature": 0.2, "top_p": 0.5, "max_tokens": 9, "stop": ["X"]}
    assert {name: sent[name] for name in options} == options
    reply = stored_reply()
    assert reply.metadata["options"] == options and reply.metadata["attempts"]


def test_max_completion_tokens_reaches_a_server_other_than_openais_as_max_tokens(sdk, stub):
    # DeepSeek, Ollama and Qwen know only max_tokens, and ignore the newer name.
    stub.queue(openai_stream(["Sure"]))
    sdk.chat.completions.create(model=MODEL, messages=HISTORY[1:2], max_completion_tokens=9)
    sent = stub.requests[-1].json
    assert sent["max_tokens"] == 9 and "max_completion_tokens" not in sent


def test_openais_own_options_reach_an_openai_compatible_provider_as_they_are(sdk, stub):
    stub.queue(openai_stream(['{"ok": true}']))
    own = {
        "seed": 7,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "response_format": {"type": "json_object"},
        "logit_bias": {"50256": -100.0},
        "reasoning_effort": "low",  # a reasoning model's, as the SDKs and the Vercel AI SDK send
    }
    sdk.chat.completions.create(model=MODEL, messages=HISTORY[1:2], logprobs=False, **own)
    sent = stub.requests[-1].json
    assert {name: sent[name] for name in own} == own
    assert "logprobs" not in sent  # false: nothing asked, nothing to refuse
    assert stored_reply().metadata["options"] == own


def test_the_default_response_format_is_not_sent(sdk, stub):
    stub.queue(openai_stream(["Plain"]))
    sdk.chat.completions.create(
        model=MODEL, messages=HISTORY[1:2], response_format={"type": "text"}
    )
    assert "response_format" not in stub.requests[-1].json


def test_null_sampling_options_count_as_unset(server, stub, alice_key):
    stub.queue(openai_stream(["Sure"]))
    body = {"model": MODEL, "messages": HISTORY[1:2], "temperature": None, "stop": None}
    headers = {"Authorization": f"Bearer {alice_key}"}
    response = httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert "temperature" not in stub.requests[-1].json and "stop" not in stub.requests[-1].json


def test_json_numbers_of_either_kind_are_taken_where_numbers_belong(server, stub, alice_key):
    # A whole number where a fraction may be, a whole float (1e16 included) where an integer
    # must be: JSON has one kind of number.
    stub.queue(openai_stream(["Sure"]))
    numbers = {"temperature": 1, "top_p": 0, "max_tokens": 5.0, "seed": 1e16}
    body = {"model": MODEL, "messages": HISTORY[1:2], **numbers, "logit_bias": {"50256": 5}}
    headers = {"Authorization": f"Bearer {alice_key}"}
    response = httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 200, response.text
    sent = stub.requests[-1].json
    assert {name: sent[name] for name in numbers} == numbers
    assert type(sent["max_tokens"]) is int and sent["seed"] == 10**16 and type(sent["seed"]) is int
    assert sent["logit_bias"] == {"50256": 5.0}
