"""The request body of POST /v1/chat/completions, as OpenAI's API defines it, in the part
chatsite can honour. What it cannot (tools, several choices, images, log probabilities, and
OpenAI's own options for a provider without them) is refused, not ignored; fields that ask
nothing of the reply (user, store, metadata, service_tier) are ignored, as by other servers."""

import math

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import ProhibitNullCharactersValidator
from rest_framework import serializers
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from conversations.api.serializers import (
    JSONBoolean,
    JSONInteger,
    JSONNumber,
    TextField,
    validate_model_id,
)
from conversations.providers.base import AS_IS_OPTIONS
from conversations.providers.registry import find_model, provider_for
from conversations.transcripts import Transcript

ROLES = ("system", "developer", "user", "assistant")  # "developer": OpenAI's newer "system"
SAMPLING = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "stop")
# Text a database column and a JSON encoder both take: no NUL, no lone surrogate.
STORABLE_TEXT = (ProhibitNullCharactersValidator(), ProhibitSurrogateCharactersValidator())
WHOLE_NUMBERS = range(-(2**63), 2**63)  # what JSON encoders and databases take
MAX_NESTING = 64  # objects and lists in one another (orjson encodes at most 254)


def storable(value: object, depth: int = 0) -> None:
    """Raise ValidationError if `value` (an option kept in a reply's metadata and sent on)
    holds what cannot be stored or encoded: text with NUL or a lone surrogate, a whole number
    beyond 64 bits, an infinite number (1e400 reads as one), nesting past MAX_NESTING."""
    if depth > MAX_NESTING:
        raise serializers.ValidationError(f"Nested too deeply (at most {MAX_NESTING} levels).")
    if isinstance(value, float) and not math.isfinite(value):
        raise serializers.ValidationError("Must be a finite number.")
    if isinstance(value, str):
        for validator in STORABLE_TEXT:
            try:
                validator(value)
            except DjangoValidationError as error:
                raise serializers.ValidationError(error.messages) from None
    elif isinstance(value, int) and not isinstance(value, bool) and value not in WHOLE_NUMBERS:
        raise serializers.ValidationError("Must be a whole number within 64 bits.")
    elif isinstance(value, dict):
        for key, item in value.items():
            storable(key, depth + 1)
            storable(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            storable(item, depth + 1)


class ContentField(serializers.Field):
    """A message's text: a string, or a list of text parts ({"type": "text", "text": …}).
    Null is no text (an assistant message's, as OpenAI's SDKs allow). No length of its own: a
    client's documents and history are bounded by the request's (DATA_UPLOAD_MAX_MEMORY_SIZE)."""

    default_error_messages = {
        "not_text": "Must be text, or a list of text parts.",
        "not_text_part": 'Only text parts are supported here; this one is "{kind}".',
        "no_text": 'A text part needs its "text", a string.',
    }

    def __init__(self, **kwargs: object) -> None:
        super().__init__(validators=STORABLE_TEXT, allow_null=True, **kwargs)

    def validate_empty_values(self, data: object) -> tuple[bool, object]:
        return (True, "") if data is None else super().validate_empty_values(data)

    def to_internal_value(self, data: object) -> str:
        if isinstance(data, list):
            data = "\n".join(self._part_text(part) for part in data)
        if not isinstance(data, str):
            self.fail("not_text")
        return data

    def _part_text(self, part: object) -> str:
        kind = part.get("type") if isinstance(part, dict) else type(part).__name__
        if kind != "text":
            self.fail("not_text_part", kind=kind)
        if not isinstance(part.get("text"), str):
            self.fail("no_text")
        return part["text"]

    def to_representation(self, value: str) -> str:
        return value


class ChatMessageInput(serializers.Serializer):
    role = serializers.ChoiceField(
        choices=ROLES,
        error_messages={"invalid_choice": '"{input}" messages are not supported here.'},
    )
    content = ContentField()


class StopField(serializers.Field):
    """Stop sequences: one string or a list of up to four, as OpenAI takes them."""

    default_error_messages = {"invalid": "Must be a string or a list of up to 4 strings."}

    def to_internal_value(self, data: object) -> list[str]:
        stops = [data] if isinstance(data, str) else data
        if not isinstance(stops, list) or len(stops) > 4:
            self.fail("invalid")
        if not all(isinstance(stop, str) and stop for stop in stops):
            self.fail("invalid")
        return stops

    def to_representation(self, value: list[str]) -> list[str]:
        return value


class ResponseFormatField(serializers.Field):
    """OpenAI's response_format; {"type": "text"}, the default, counts as unset."""

    default_error_messages = {  # braces doubled: DRF formats the message
        "invalid": 'Must be {{"type": "text"}}, {{"type": "json_object"}} or '
        '{{"type": "json_schema", "json_schema": {{...}}}}.'
    }

    def to_internal_value(self, data: object) -> dict | None:
        kind = data.get("type") if isinstance(data, dict) else None
        if kind not in ("text", "json_object", "json_schema"):
            self.fail("invalid")
        if kind == "json_schema" and not isinstance(data.get("json_schema"), dict):
            self.fail("invalid")
        return None if kind == "text" else data

    def to_representation(self, value: dict) -> dict:
        return value


class StreamOptionsInput(serializers.Serializer):
    include_usage = JSONBoolean(default=False)


class ChatCompletionInput(serializers.Serializer):
    """Validated by one shared instance (validated): no self.context, initial_data or instance."""

    # Numbers must be JSON numbers, as OpenAI's API has them: not "0.5", not true.
    model = TextField(max_length=200, validators=[validate_model_id])
    messages = ChatMessageInput(many=True, allow_empty=False)
    stream = JSONBoolean(default=False, allow_null=True)
    stream_options = StreamOptionsInput(required=False, allow_null=True)
    n = JSONInteger(required=False, allow_null=True)
    # Sampling options, passed on to the provider (each in its own names).
    temperature = JSONNumber(required=False, allow_null=True, min_value=0, max_value=2)
    top_p = JSONNumber(required=False, allow_null=True, min_value=0, max_value=1)
    max_tokens = JSONInteger(required=False, allow_null=True, min_value=1)
    max_completion_tokens = JSONInteger(required=False, allow_null=True, min_value=1)
    stop = StopField(required=False, allow_null=True)
    # Passed on as they are where the model's provider speaks OpenAI's protocol (AS_IS_OPTIONS).
    seed = JSONInteger(required=False, allow_null=True)
    presence_penalty = JSONNumber(required=False, allow_null=True, min_value=-2, max_value=2)
    frequency_penalty = JSONNumber(required=False, allow_null=True, min_value=-2, max_value=2)
    response_format = ResponseFormatField(required=False, allow_null=True)
    reasoning_effort = TextField(required=False, allow_null=True, max_length=40)
    logit_bias = serializers.DictField(
        child=JSONNumber(min_value=-100, max_value=100),
        required=False,
        allow_null=True,
    )
    # What the answers here cannot carry: refused rather than quietly left out.
    logprobs = JSONBoolean(required=False, allow_null=True)
    top_logprobs = JSONInteger(required=False, allow_null=True)
    tools = serializers.ListField(required=False, allow_null=True)
    functions = serializers.ListField(required=False, allow_null=True)

    def validate_n(self, value: int | None) -> int | None:
        if value not in (None, 1):
            raise serializers.ValidationError("Only one choice (n=1) is supported.")
        return value

    def validate_tools(self, value: list | None) -> list | None:
        if value:
            raise serializers.ValidationError("Tools (function calling) are not supported.")
        return value

    validate_functions = validate_tools

    def validate_logit_bias(self, value: dict | None) -> dict | None:
        # Keys are token ids, as OpenAI's API takes them: whole numbers, written as text.
        if bad := [key for key in value or () if not (key.isascii() and key.isdigit())]:
            raise serializers.ValidationError(f'Keys must be token ids (like "50256"): {bad[0]!r}.')
        return value

    def validate_logprobs(self, value: bool | None) -> bool | None:
        if value:
            raise serializers.ValidationError("Log probabilities are not supported here.")
        return value

    def validate_top_logprobs(self, value: int | None) -> int | None:
        if value is not None:
            raise serializers.ValidationError("Log probabilities are not supported here.")
        return value

    def validate(self, attrs: dict) -> dict:
        """Options that can be stored and sent on; OpenAI's own ones only for providers that
        take them, refused for the rest."""
        unstorable = {}
        for name in (*SAMPLING, *AS_IS_OPTIONS):
            try:
                storable(attrs.get(name))
            except serializers.ValidationError as error:
                unstorable[name] = error.detail
        if unstorable:
            raise serializers.ValidationError(unstorable)
        model = find_model(attrs["model"])
        provider = provider_for(model)
        given = [name for name in AS_IS_OPTIONS if attrs.get(name) is not None]
        message = f"Not supported by {model.label}; leave it out for this model."
        refused = {name: [message] for name in given if name not in provider.passes_on}
        if refused := refused | provider.limits.refusals(attrs, model.label):
            raise serializers.ValidationError(refused)
        return attrs

    def validate_messages(self, value: list[dict]) -> list[dict]:
        turns = turns_of(value)  # messages without text left out
        ends_with_user = bool(turns) and turns[-1][0] == "user"
        spoken = [m["role"] for m in value if m["role"] in ("user", "assistant")]
        if not ends_with_user and spoken and spoken[-1] == "user":
            raise serializers.ValidationError("The last user message is empty.")
        if not ends_with_user or turns[0][0] != "user":
            raise serializers.ValidationError(
                "The conversation must start and end with a user message with text"
                " (messages without text are left out)."
            )
        return value


def turns_of(messages: list[dict]) -> list[tuple[str, str]]:
    """The user and assistant messages as turns: messages of one role in a row (a document,
    then a question) are one turn, their texts a blank line apart, as the model reads them.
    A message without text says nothing, and is left out (Anthropic refuses an empty one)."""
    turns: list[tuple[str, str]] = []
    for message in messages:
        role, content = message["role"], message["content"]
        if role not in ("user", "assistant") or not content.strip():
            continue
        if turns and turns[-1][0] == role:
            turns[-1] = (role, f"{turns[-1][1]}\n\n{content}")
        else:
            turns.append((role, content))
    return turns


def transcript_of(data: dict) -> Transcript:
    """The validated request's conversation and sampling options."""
    messages = data["messages"]
    system = "\n\n".join(m["content"] for m in messages if m["role"] in ("system", "developer"))
    turns = turns_of(messages)
    # null means unset, as OpenAI takes it
    chosen = (*SAMPLING, *AS_IS_OPTIONS)
    options = {name: data[name] for name in chosen if data.get(name) is not None}
    return Transcript(system=system, turns=turns, options=options)


def includes_usage(data: dict) -> bool:
    return bool((data.get("stream_options") or {}).get("include_usage"))
