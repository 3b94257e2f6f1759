"""The hot paths' inputs are validated by one shared serializer per class
(conversations/api/serializers.py, validated): validating leaves nothing of a request on it,
and its errors read as DRF's is_valid words them."""

import copy

import pytest
from rest_framework import serializers

from conversations.api.openai_compat.inputs import ChatCompletionInput
from conversations.api.serializers import MessageCreateInput, _shared, validated
from conversations.providers.registry import available_models
from tests.replies import HISTORY

MODEL_ID = available_models()[0].id  # whichever the test settings configure
GOOD = {
    MessageCreateInput: {"content": "Hi", "client_id": "6f1c1a56-3c5e-4a51-9a39-2b8d7d1f0a11"},
    ChatCompletionInput: {"model": MODEL_ID, "messages": HISTORY, "stream": True},
}
BAD = {  # errors in fields, nested ones, and bodies that are not objects
    MessageCreateInput: [
        {"content": " ", "model": "openai:no-such-model"},
        {"client_id": "not-a-uuid"},
        *(None, ["Hi"], "Hi"),
    ],
    ChatCompletionInput: [
        {"model": MODEL_ID, "messages": [{"role": "tool", "content": 5}], "n": 2},
        {"model": "x", "messages": HISTORY, "stream_options": {"include_usage": "yes"}},
        {"model": "x", "messages": HISTORY, "logit_bias": {"abc": "1"}, "stop": [1]},
        *(None, [], "Hi"),
    ],
}


def state(root: serializers.Field) -> dict:
    """Every attribute of the serializer, its fields and theirs, as they are now."""
    taken, nodes = {}, [root]
    while nodes:
        node = nodes.pop()
        for name, value in vars(node).items():
            kept = copy.copy(value) if isinstance(value, (list, dict)) else value
            taken[(id(node), name)] = (id(value), kept)
        if isinstance(node, serializers.Serializer):
            nodes += node.fields.values()
        if (child := getattr(node, "child", None)) is not None:
            nodes.append(child)
    return taken


@pytest.mark.parametrize("input_class", GOOD, ids=lambda c: c.__name__)
def test_validating_leaves_nothing_on_the_shared_serializer(db, input_class):
    before = state(_shared(input_class))
    assert validated(input_class, GOOD[input_class])
    for body in BAD[input_class]:
        with pytest.raises(serializers.ValidationError):
            validated(input_class, body)
    assert state(_shared(input_class)) == before


@pytest.mark.parametrize("input_class", GOOD, ids=lambda c: c.__name__)
@pytest.mark.parametrize("body", [None, [], "Hi"], ids=["null", "list", "string"])
def test_errors_read_as_is_valid_words_them(db, input_class, body):
    with pytest.raises(serializers.ValidationError) as raised:
        validated(input_class, body)
    serializer = input_class(data=body)
    assert not serializer.is_valid()
    assert raised.value.detail == serializer.errors
