"""The request body of POST /v1/chat/completions, as OpenAI's API defines it, in the part
chatsite can honour. What it cannot (tools, several choices, images) is refused, not ignored."""

from django.conf import settings
from rest_framework import serializers

from conversations.api.serializers import TextField, validate_model_id
from conversations.transcripts import Transcript

ROLES = ("system", "developer", "user", "assistant")  # "developer": OpenAI's newer "system"
SAMPLING = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "stop")


class ContentField(serializers.Field):
    """A message's text: a string, or a list of text parts ({"type": "text", "text": …})."""

    default_error_messages = {
        "not_text": "Must be text, or a list of text parts.",
        "not_text_part": 'Only text parts are supported here; this one is "{kind}".',
        "too_long": f"Longer than {settings.CHATSITE_MAX_MESSAGE_CHARS:,} characters.",
    }

    def to_internal_value(self, data: object) -> str:
        if isinstance(data, list):
            data = "\n".join(self._part_text(part) for part in data)
        if not isinstance(data, str):
            self.fail("not_text")
        if len(data) > settings.CHATSITE_MAX_MESSAGE_CHARS:
            self.fail("too_long")
        return data

    def _part_text(self, part: object) -> str:
        kind = part.get("type") if isinstance(part, dict) else type(part).__name__
        if kind != "text" or not isinstance(part.get("text"), str):
            self.fail("not_text_part", kind=kind)
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


class StreamOptionsInput(serializers.Serializer):
    include_usage = serializers.BooleanField(default=False)


class ChatCompletionInput(serializers.Serializer):
    model = TextField(max_length=200, validators=[validate_model_id])
    messages = ChatMessageInput(many=True, allow_empty=False)
    stream = serializers.BooleanField(default=False, allow_null=True)
    stream_options = StreamOptionsInput(required=False, allow_null=True)
    n = serializers.IntegerField(required=False, allow_null=True)
    # Sampling options, passed on to the provider (each in its own names).
    temperature = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=2)
    top_p = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
    max_tokens = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    max_completion_tokens = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    stop = StopField(required=False, allow_null=True)
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

    def validate_messages(self, value: list[dict]) -> list[dict]:
        turns = [m for m in value if m["role"] in ("user", "assistant")]
        if [m["role"] for m in turns] != ["user", "assistant"] * (len(turns) // 2) + ["user"]:
            raise serializers.ValidationError(
                "User and assistant messages must take turns, starting and ending with a user one."
            )
        if not turns[-1]["content"].strip():
            raise serializers.ValidationError("The last user message is empty.")
        return value

    def transcript(self) -> Transcript:
        data = self.validated_data
        messages = data["messages"]
        system = "\n\n".join(m["content"] for m in messages if m["role"] in ("system", "developer"))
        turns = [(m["role"], m["content"]) for m in messages if m["role"] in ("user", "assistant")]
        # null means unset, as OpenAI takes it
        options = {name: data[name] for name in SAMPLING if data.get(name) is not None}
        return Transcript(system=system, turns=turns, options=options)

    @property
    def include_usage(self) -> bool:
        return bool((self.validated_data.get("stream_options") or {}).get("include_usage"))
