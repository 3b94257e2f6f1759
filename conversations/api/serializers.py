"""API input and output shapes. Inputs name only what a client may set; the rest is ignored."""

import functools
import math
from datetime import datetime

from django.conf import settings
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.settings import api_settings

from conversations.models import Conversation, Message
from conversations.providers.registry import available_models, find_model


class TextField(serializers.CharField):
    """Text only: DRF's CharField would quietly store 42 or true as "42" or "True"."""

    default_error_messages = {"not_text": "Must be text (a JSON string)."}

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("not_text")
        return super().to_internal_value(data)


class UUIDText(serializers.UUIDField):
    """A UUID written as text: DRF's UUIDField would take the number 5 as UUID ...0005."""

    def to_internal_value(self, data: object) -> object:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class JSONBoolean(serializers.BooleanField):
    """true or false: DRF's BooleanField would take "yes", "on" or 1 as true."""

    def to_internal_value(self, data: object) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class JSONNumber(serializers.FloatField):
    """A number: DRF's FloatField would take "0.5" (a string) or true as one."""

    default_error_messages = {
        "invalid": "Must be a number (not text, true or false).",
        "not_finite": "Must be a finite number.",  # 1e400 is read as infinity
    }

    def to_internal_value(self, data: object) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        if isinstance(data, float) and not math.isfinite(data):
            self.fail("not_finite")
        return super().to_internal_value(data)


class JSONInteger(serializers.IntegerField):
    """A whole number: DRF's IntegerField would take "5" (a string) as one, and refuse 1e16
    (it reads the text of a float, "1e+16")."""

    default_error_messages = {
        "invalid": "Must be a whole number (not text, true or false).",
        "not_finite": "Must be a finite number.",
    }

    def to_internal_value(self, data: object) -> int:
        if isinstance(data, float) and not math.isfinite(data):
            self.fail("not_finite")
        if isinstance(data, float) and data.is_integer():
            data = int(data)
        if not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class MessageSerializer(serializers.ModelSerializer):
    conversation = serializers.UUIDField(source="conversation_id", read_only=True)
    parent = serializers.UUIDField(source="parent_id", read_only=True, allow_null=True)
    # Blank until a reply has usage: said here, as read-only fields lose allow_blank.
    usage_source = serializers.ChoiceField(
        choices=Message.UsageSource.choices, allow_blank=True, read_only=True
    )
    stream_url = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = [
            "id", "conversation", "parent", "role", "content", "reasoning", "status",
            "provider", "model", "finish_reason", "prompt_tokens", "completion_tokens",
            "total_tokens", "reasoning_tokens", "usage_source", "time_to_first_token_ms",
            "duration_ms", "error_code", "error", "metadata", "client_id",
            "created_at", "completed_at", "chosen_at", "stream_url",
        ]  # fmt: skip
        read_only_fields = fields

    def get_stream_url(self, message: Message) -> str | None:
        if message.role != Message.Role.ASSISTANT:
            return None
        return f"/api/messages/{message.id}/stream/"


def validated(input_class: type[serializers.Serializer], data: object) -> dict:
    """`data` validated by `input_class`; raises ValidationError, as is_valid would.

    For the hot paths' inputs (message POST, /v1 completion), whose validation reads no
    context, instance or initial data: one instance per class validates every request,
    from several threads at once, as run_validation keeps each request's values in its own
    locals. DRF builds a serializer's fields anew for each instance, deep-copying every
    declared field and nested serializer, which cost several times the validation (0.4 ms
    against 0.05 for the /v1 body; bench/HISTORY.md)."""
    if data is None:  # a JSON null body: as is_valid says it, not "This field may not be null."
        raise serializers.ValidationError(
            {api_settings.NON_FIELD_ERRORS_KEY: [ErrorDetail("No data provided", code="null")]}
        )
    return _shared(input_class).run_validation(data)


@functools.cache
def _shared(serializer_class: type[serializers.Serializer]) -> serializers.Serializer:
    """One instance of `serializer_class` for every call on the hot paths, built now."""
    serializer = serializer_class()
    _build(serializer)
    return serializer


def _build(field: serializers.Field) -> None:
    """Make now what DRF makes on first use (fields, validator lists), so that the first
    requests at once do not each make them."""
    field.validators  # noqa: B018
    if isinstance(field, serializers.Serializer):
        for nested in field.fields.values():
            _build(nested)
    if (child := getattr(field, "child", None)) is not None:  # ListSerializer, ListField, DictField
        _build(child)


def message_data(message: Message) -> dict:
    """A message as the API shows it. One serializer serves every call on the hot paths
    (message POST, done events): DRF builds a ModelSerializer's fields anew per instance,
    which cost more than the data."""
    return _shared(MessageSerializer).to_representation(message)


class ConversationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Conversation
        fields = ["id", "title", "model", "source", "system_prompt", "created_at", "updated_at"]
        read_only_fields = fields


class ConversationDetailSerializer(ConversationSerializer):
    messages = MessageSerializer(many=True, read_only=True)

    class Meta(ConversationSerializer.Meta):
        fields = [*ConversationSerializer.Meta.fields, "messages"]
        read_only_fields = fields


def validate_model_id(value: str) -> str:
    if find_model(value) is None:
        valid = ", ".join(choice.id for choice in available_models())
        message = f"Unknown model {value!r}. Valid models: {valid}."
        raise serializers.ValidationError(message, code="model_not_found")
    return value


def system_prompt_field(**options: object) -> TextField:
    return TextField(
        max_length=settings.CHATSITE_MAX_MESSAGE_CHARS,
        allow_blank=True,
        help_text="What the model is told first in this conversation; empty: the site's.",
        **options,
    )


class ConversationCreateInput(serializers.Serializer):
    title = TextField(max_length=200, required=False, allow_blank=True, default="")
    model = TextField(max_length=200, required=False, validators=[validate_model_id])
    system_prompt = system_prompt_field(required=False, default="")


class ConversationUpdateInput(serializers.Serializer):
    title = TextField(max_length=200, required=False, allow_blank=True)
    system_prompt = system_prompt_field(required=False)

    def validate(self, data: dict) -> dict:
        if not data:
            raise serializers.ValidationError("Give a title or a system_prompt to change.")
        return data


class MessageCreateInput(serializers.Serializer):
    """Validated by one shared instance (validated): no self.context, initial_data or instance."""

    content = TextField(max_length=settings.CHATSITE_MAX_MESSAGE_CHARS, trim_whitespace=False)
    model = TextField(max_length=200, required=False, validators=[validate_model_id])
    client_id = UUIDText(required=False)

    def validate_content(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("Write a message first: it is empty.")
        return value


class ModelChoiceSerializer(serializers.Serializer):
    id = serializers.CharField()
    provider = serializers.CharField()
    name = serializers.CharField()
    label = serializers.CharField()
    is_default = serializers.BooleanField()
    stream = serializers.BooleanField()


class QueryParams(serializers.Serializer):
    """Query parameters, where one given empty is an error rather than quietly ignored."""

    def to_internal_value(self, data: object) -> dict:
        empty = [
            name
            for name, field in self.fields.items()
            if data.get(name) == "" and not getattr(field, "allow_blank", False)
        ]
        if empty:
            message = "Give a value, or leave the parameter out."
            raise serializers.ValidationError({name: [message] for name in empty})
        return super().to_internal_value(data)


class CalendarDateTimeField(serializers.DateTimeField):
    """A DateTimeField whose times that UTC cannot hold (year 1 east of Greenwich, 9999 west
    of it) are a 400: DRF checks a naive one's conversion without catching its OverflowError."""

    default_error_messages = {"overflow": "Too far in the past or the future."}

    def enforce_timezone(self, value: datetime) -> datetime:
        try:
            return super().enforce_timezone(value)
        except OverflowError:
            self.fail("overflow")


class ConversationListQuery(QueryParams):
    updated_after = CalendarDateTimeField(
        required=False, help_text="Only conversations updated after this time (ISO 8601)."
    )
    model = serializers.CharField(max_length=200, required=False, help_text="A model id.")
    q = serializers.CharField(
        max_length=200, required=False, help_text="Words in the title or any message."
    )
    source = serializers.ChoiceField(
        choices=Conversation.Source.choices,
        required=False,
        help_text="Where they started: chat (the pages and this API) or api (/v1).",
    )
    started = serializers.BooleanField(
        required=False,
        help_text="true: only conversations with a message, a title or a system prompt (not "
        "a new chat opened and left empty).",
    )


class RegenerateInput(serializers.Serializer):
    """Validated by one shared instance (validated): no self.context, initial_data or instance."""

    model = TextField(max_length=200, required=False, validators=[validate_model_id])
    client_id = UUIDText(required=False)
