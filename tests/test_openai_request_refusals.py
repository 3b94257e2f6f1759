"""Requests the OpenAI-compatible endpoint refuses: 400 saying what is wrong, nothing stored
and the provider not asked, whether the request is malformed or holds what no JSON encoder or
database takes."""

import concurrent.futures
import json

import httpx
import openai
import pytest

from conversations.models import Conversation, Message
from tests.replies import HISTORY, MODEL


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"model": "openai:nope"}, "Unknown model 'openai:nope'"),
        ({"model": None}, "model"),
        ({"messages": []}, "messages"),
        (
            {"messages": [*HISTORY[1:2], {"role": "tool", "content": "x"}]},
            'messages: item 1: role: "tool" messages are not supported here.',
        ),
        ({"messages": HISTORY[1:3]}, "must start and end with a user message"),
        ({"messages": [{"role": "user", "content": 42}]}, "Must be text"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            'Only text parts are supported here; this one is "image_url"',
        ),
        ({"messages": [{"role": "user", "content": "  "}]}, "The last user message is empty"),
        ({"n": 2}, "Only one choice (n=1)"),
        ({"tools": [{"type": "function"}]}, "Tools (function calling) are not supported"),
        ({"temperature": 3}, "temperature: Ensure this value is less than or equal to 2"),
        ({"max_tokens": 0}, "max_tokens: Ensure this value is greater than or equal to 1"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop: Must be a string or a list of up to 4"),
        ({"logprobs": True}, "logprobs: Log probabilities are not supported here."),
        ({"top_logprobs": 2}, "top_logprobs: Log probabilities are not supported here."),
        ({"response_format": {"type": "xml"}}, 'response_format: Must be {"type": "text"}'),
        ({"response_format": {"type": "json_schema"}}, 'response_format: Must be {"type"'),
        ({"presence_penalty": 2.5}, "presence_penalty: Ensure this value is less than or equal"),
        ({"logit_bias": {"50256": -101}}, "logit_bias: 50256: Ensure this value is greater"),
        ({"seed": "x"}, "seed: Must be a whole number (not text, true or false)."),
        # JSON's types, as OpenAI's API checks them: a number in a string, or true, is not one.
        ({"temperature": "0.5"}, "temperature: Must be a number (not text, true or false)."),
        ({"top_p": True}, "top_p: Must be a number (not text, true or false)."),
        ({"max_tokens": "5"}, "max_tokens: Must be a whole number (not text, true or false)."),
        (
            {"max_completion_tokens": True},
            "max_completion_tokens: Must be a whole number (not text, true or false).",
        ),
        ({"n": "1"}, "n: Must be a whole number (not text, true or false)."),
        ({"seed": "7"}, "seed: Must be a whole number (not text, true or false)."),
        (
            {"frequency_penalty": "1"},
            "frequency_penalty: Must be a number (not text, true or false).",
        ),
        ({"logit_bias": {"abc": 1}}, "logit_bias: Keys must be token ids (like \"50256\"): 'abc'."),
        ({"seed": 5.5}, "seed: Must be a whole number (not text, true or false)."),
        (
            {"logit_bias": {"50256": "5"}},
            "logit_bias: 50256: Must be a number (not text, true or false).",
        ),
    ],
)
def test_bad_requests_get_400_saying_what_is_wrong_and_store_nothing(
    server, stub, alice_key, change, says
):
    body = {"model": MODEL, "messages": HISTORY, **change}
    if change.get("model", "") is None:
        del body["model"]
    headers = {"Authorization": f"Bearer {alice_key}"}
    response = httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=headers)
    # As OpenAI answers a model it does not have: 404.
    assert response.status_code == (404 if "Unknown model" in says else 400), response.text
    error = response.json()["error"]
    assert says in error["message"]
    assert error["type"] == "invalid_request_error" and error["param"] in {*change, "messages"}
    assert not Conversation.objects.exists() and not Message.objects.exists()
    assert not stub.requests


# Sent as JSON text (escapes and all): values a database or a JSON encoder cannot take, from
# options kept with the reply to text that is stored.
UNSTORABLE = [
    ({"stop": "\ud800"}, "stop: Surrogate characters are not allowed: U+D800."),
    ({"stop": ["ok", "a\u0000"]}, "stop: Null characters are not allowed."),
    ({"max_tokens": 10**30}, "max_tokens: Must be a whole number within 64 bits."),
    ({"seed": -(10**30)}, "seed: Must be a whole number within 64 bits."),
    ({"logit_bias": {"\udc00": 1}}, "logit_bias: Keys must be token ids"),
    (
        {"response_format": {"type": "json_schema", "json_schema": {"name": "a\u0000"}}},
        "response_format: Null characters are not allowed.",
    ),
    ({"messages": [{"role": "user", "content": "a\ud800b"}]}, "content: Surrogate characters"),
    ({"messages": [{"role": "user", "content": "a\u0000b"}]}, "content: Null characters"),
    (
        {"messages": [{"role": "system", "content": "\ud800"}, HISTORY[1]]},
        "content: Surrogate characters",
    ),
    (
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "\udc00"}]}]},
        "content: Surrogate characters",
    ),
    (
        {"messages": [{"role": "user", "content": [{"type": "text"}]}]},
        'content: A text part needs its "text", a string.',
    ),
    ({"stream": "yes"}, "stream: Must be a valid boolean."),
    # What a refusal repeats of the request: its half character shown as U+FFFD.
    (
        {"messages": [{"role": "\ud800", "content": "hi"}]},
        'role: "\ufffd" messages are not supported here.',
    ),
    (
        {"messages": [{"role": "user", "content": [{"type": "\udc00"}]}]},
        'Only text parts are supported here; this one is "\ufffd".',
    ),
    ({"logit_bias": {"\ud800": "x"}}, "logit_bias: \ufffd: Must be a number"),
]


def assert_raw_body_refused(server, stub, alice_key: str, body: str, says: str) -> None:
    """POST `body`, JSON text as written, to /v1: a 400 that says `says`, and nothing done."""
    headers = {"Authorization": f"Bearer {alice_key}", "Content-Type": "application/json"}
    url = f"{server.url}/v1/chat/completions"
    response = httpx.post(url, content=body.encode(), headers=headers)
    assert response.status_code == 400, response.text
    assert says in response.json()["error"]["message"]
    assert not Conversation.objects.exists() and not Message.objects.exists()
    assert not stub.requests


@pytest.mark.parametrize(("change", "says"), UNSTORABLE)
def test_text_and_numbers_that_cannot_be_stored_get_400_and_store_nothing(
    server, stub, alice_key, change, says
):
    body = json.dumps({"model": MODEL, "messages": HISTORY, **change})  # escapes kept as such
    assert_raw_body_refused(server, stub, alice_key, body, says)


@pytest.mark.parametrize(
    ("response_format", "says"),
    [
        ('{"type": "json_object", "x": 1e400}', "response_format: Must be a finite number."),
        ('{"type": "json_object", "x": %s}' % ("[" * 300 + "]" * 300), "Nested too deeply"),
        ('{"type": "json_object", "x": %s}' % ("[" * 5000 + "]" * 5000), "nested too deeply"),
    ],
    ids=["number-read-as-infinite", "nested-past-the-limit", "nested-past-the-json-module"],
)
def test_json_no_encoder_or_database_takes_is_a_400(server, stub, alice_key, response_format, says):
    body = json.dumps({"model": MODEL, "messages": HISTORY}).removesuffix("}")
    body += f', "response_format": {response_format}}}'  # what json.dumps would not write
    assert_raw_body_refused(server, stub, alice_key, body, says)


def test_each_request_is_validated_on_its_own(server, stub, alice_key):
    """One serializer validates every request (conversations/api/serializers.py, validated):
    each request's values and errors are its own, one after another and at once."""
    url = f"{server.url}/v1/chat/completions"
    headers = {"Authorization": f"Bearer {alice_key}"}
    refused = {"temperature": 3, "n": 2, "stop": ["a"] * 5, "seed": "x", "top_p": 2}

    def send(case: str) -> tuple[str, httpx.Response]:
        change = {case: refused[case]} if case in refused else {}
        messages = [{"role": "user", "content": f"Asked by {case}"}]
        body = {"model": MODEL, "messages": messages, **change}
        return case, httpx.post(url, json=body, headers=headers, timeout=30)

    def assert_own(case: str, response: httpx.Response) -> None:
        if case in refused:  # its own field named, and no other request's
            assert response.status_code == 400, response.text
            assert set(response.json()["error"]["fields"]) == {case}, response.text
        else:
            assert response.status_code == 200, response.text
            conversation = Conversation.objects.get(pk=response.headers["X-Chatsite-Conversation"])
            assert conversation.title == f"Asked by {case}"

    in_turn = ["temperature", "first", "n", "second", "stop", "third"]
    for case in in_turn:
        assert_own(*send(case))
    at_once = [*refused, *(f"at once {i}" for i in range(6))] * 2
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(at_once)) as pool:
        for case, response in pool.map(send, at_once):
            assert_own(case, response)
    assert Conversation.objects.count() == 3 + 12


def test_refusals_read_as_openais_through_its_sdk(server, stub, sdk):
    with pytest.raises(openai.NotFoundError) as unknown:
        sdk.chat.completions.create(model="openai:nope", messages=HISTORY[1:2])
    assert (unknown.value.code, unknown.value.param) == ("model_not_found", "model")
    with pytest.raises(openai.BadRequestError) as bad:
        sdk.chat.completions.create(model=MODEL, messages=HISTORY[1:2], temperature=3)
    assert (bad.value.type, bad.value.param) == ("invalid_request_error", "temperature")
    assert "less than or equal to 2" in bad.value.message
    with pytest.raises(openai.AuthenticationError) as no_key:
        sdk.with_options(api_key="sk-not-a-key").models.list()
    assert no_key.value.type == "invalid_request_error" and no_key.value.param is None
    unknown_path = httpx.post(f"{server.url}/v1/completions", json={})
    assert unknown_path.status_code == 404
    assert unknown_path.json()["error"] == {
        "message": "Not found.", "type": "invalid_request_error", "param": None, "code": "not_found"
    }  # fmt: skip
    assert not stub.requests


@pytest.mark.parametrize("field", ["temperature", "max_tokens"])
def test_a_number_read_as_infinite_is_refused_as_one(server, stub, alice_key, field):
    body = json.dumps({"model": MODEL, "messages": HISTORY}).removesuffix("}")
    body += f', "{field}": 1e400}}'  # what json.dumps would not write
    assert_raw_body_refused(server, stub, alice_key, body, f"{field}: Must be a finite number.")


@pytest.mark.parametrize("body", ["null", "[]", '"text"'])
def test_a_body_that_is_no_object_names_no_param(server, stub, alice_key, body):
    headers = {"Authorization": f"Bearer {alice_key}", "Content-Type": "application/json"}
    url = f"{server.url}/v1/chat/completions"
    error = httpx.post(url, content=body.encode(), headers=headers).json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", None), error
