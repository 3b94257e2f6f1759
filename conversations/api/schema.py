"""The OpenAPI description of the API, served at /api/schema/ (drf-spectacular).

The views stay thin: what each endpoint takes and answers is described here, by view
extensions that drf-spectacular applies while it generates the schema. The SSE stream is a
plain async Django view, which drf-spectacular cannot see, so a postprocessing hook adds it.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiViewExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from drf_spectacular.views import SpectacularAPIView
from rest_framework import serializers

from conversations.api import export, keys, usage, views
from conversations.api.serializers import (
    ConversationCreateInput,
    ConversationDetailSerializer,
    ConversationListQuery,
    ConversationSerializer,
    ConversationUpdateInput,
    MessageCreateInput,
    MessageSerializer,
    ModelChoiceSerializer,
    RegenerateInput,
)
from conversations.models import Conversation, Message

SchemaView = SpectacularAPIView

Error = inline_serializer(
    "Error",
    {
        "error": inline_serializer(
            "ErrorDetail",
            {
                "code": serializers.CharField(),
                "message": serializers.CharField(help_text="A sentence for people."),
                "fields": serializers.DictField(required=False, help_text="Per-field errors."),
            },
        )
    },
)
MessagePair = inline_serializer(
    "MessagePair",
    {
        "user_message": MessageSerializer(),
        "assistant_message": MessageSerializer(),
        "stream_url": serializers.CharField(help_text="GET it for the reply's events."),
    },
)
ConversationPage = inline_serializer(
    "ConversationPage",
    {
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": ConversationSerializer(many=True),
    },
)
PAGE_PARAMETERS = [
    OpenApiParameter("page", int, description="Page number, from 1."),
    OpenApiParameter("page_size", int, description="Up to 200; 50 if not given."),
]


class MessageRecord(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = "__all__"


class ConversationRecord(serializers.ModelSerializer):
    owner = serializers.CharField(help_text="The owner's username.")
    messages = MessageRecord(many=True)

    class Meta:
        model = Conversation
        fields = "__all__"


def errors(*codes: int) -> dict:
    reasons = {
        400: "Invalid input.",
        401: "No valid credentials.",
        403: "Not allowed.",
        404: "Not found, or not yours.",
        409: "The conversation's previous reply is still being generated.",
        422: "The client_id (or Idempotency-Key) was sent before with other content.",
        429: "Over a budget: the message names the limit and when it resets (Retry-After).",
    }
    return {code: OpenApiResponse(Error, description=reasons[code]) for code in (401, *codes)}


def describe(view: type, **methods: dict) -> None:
    """Register how `view` appears in the schema: extend_schema arguments per HTTP method."""

    class Description(OpenApiViewExtension):
        target_class = view

        def view_replacement(self) -> type:
            annotated = type(self.target.__name__, (self.target,), {})
            decorators = {method: extend_schema(**kwargs) for method, kwargs in methods.items()}
            return extend_schema_view(**decorators)(annotated)


describe(
    views.ModelList,
    get=dict(
        summary="Models you can choose",
        responses={
            200: inline_serializer("ModelList", {"models": ModelChoiceSerializer(many=True)}),
            **errors(),
        },
        tags=["models"],
    ),
)
describe(
    views.ConversationList,
    get=dict(
        operation_id="conversations_list",
        summary="Your conversations, most recently updated first",
        parameters=[ConversationListQuery, *PAGE_PARAMETERS],
        responses={200: ConversationPage, **errors(400, 404)},
    ),
    post=dict(
        summary="Start a conversation",
        request=ConversationCreateInput,
        responses={201: ConversationSerializer, **errors(400)},
    ),
)
describe(
    views.ConversationDetail,
    get=dict(
        summary="A conversation with all its messages",
        responses={200: ConversationDetailSerializer, **errors(404)},
    ),
    patch=dict(
        summary="Rename a conversation or change its system prompt",
        request=ConversationUpdateInput,
        responses={200: ConversationSerializer, **errors(400, 404)},
    ),
    delete=dict(
        summary="Delete a conversation (a running reply is stopped first)",
        description="409 if replies keep starting in it (messages from another window) while "
        "it is being deleted.",
        responses={204: None, **errors(404, 409)},
    ),
)
describe(
    views.MessageCreate,
    post=dict(
        summary="Send a message; its reply is generated in the background",
        description=(
            "Stores the message and a pending reply, then starts the reply. Follow it at "
            "`stream_url`. A repeated `client_id` (or `Idempotency-Key` header) with the same "
            "`content` returns the first pair with `Idempotent-Replayed: true`, even over a "
            "budget reached since; `model` is not compared. With other content it is a 422."
        ),
        request=MessageCreateInput,
        parameters=[OpenApiParameter("Idempotency-Key", OpenApiTypes.UUID, "header")],
        responses={201: MessagePair, **errors(400, 404, 409, 422, 429)},
        tags=["messages"],
    ),
)
describe(
    views.ReplyStop,
    post=dict(
        summary="Stop a reply; what was generated so far is kept",
        request=None,
        responses={200: MessageSerializer, **errors(400, 404)},
        tags=["messages"],
    ),
)
describe(
    views.ReplyChoose,
    post=dict(
        summary="Choose which of a user message's replies the conversation goes on from",
        description="The chat page shows the reply chosen last (a new reply counts as chosen "
        "when it is made), and the next message's model is sent the one chosen last that has "
        "text (not a failed reply, nor one stopped before any text). The conversation's "
        "`updated_at` does not change (its place in the lists stays). 404 for a reply that is "
        "not yours.",
        request=None,
        responses={200: MessageSerializer, **errors(400, 404)},
        tags=["messages"],
    ),
)
describe(
    views.ReplyRegenerate,
    post=dict(
        summary="Generate another reply to a user message (the earlier ones stay)",
        description=(
            "Send the id of the user message or of one of its replies. A repeated `client_id` "
            "(or `Idempotency-Key` header) for the same user message returns the first pair "
            "with `Idempotent-Replayed: true`, even over a budget reached since; `model` is not "
            "compared. A `client_id` used before in the conversation for anything else is a 422."
        ),
        request=RegenerateInput,
        parameters=[OpenApiParameter("Idempotency-Key", OpenApiTypes.UUID, "header")],
        responses={201: MessagePair, **errors(400, 404, 409, 422, 429)},
        tags=["messages"],
    ),
)
STAFF_OWNER = (
    " Staff signed in (not with an API key, which gets 403) may pass `owner=<username>` to "
    "export another user's data; that is recorded in the access audit. For anyone else "
    "`owner` is ignored."
)
describe(
    export.ConversationExport,
    get=dict(
        summary="Export a conversation",
        description="JSON has every stored field, Markdown is a transcript, JSONL is one line "
        "in the OpenAI fine-tuning shape (an answer stopped, failed or cut short has weight "
        "0: context, not learned from)." + STAFF_OWNER,
        parameters=[export.ExportQuery],
        responses={
            (200, "application/json"): ConversationRecord,
            (200, "text/markdown"): OpenApiTypes.STR,
            (200, "application/jsonl"): OpenApiTypes.STR,
            **errors(400, 404),
        },
        tags=["export"],
    ),
)
describe(
    export.BulkExport,
    get=dict(
        summary="Export all your conversations (streamed)",
        description='JSON is `{"conversations": [...]}`; JSONL has one conversation a line.'
        + STAFF_OWNER,
        parameters=[export.BulkExportQuery],
        responses={
            (200, "application/json"): inline_serializer(
                "BulkExport", {"conversations": ConversationRecord(many=True)}
            ),
            (200, "application/jsonl"): OpenApiTypes.STR,
            **errors(400, 404),
        },
        tags=["export"],
    ),
)
describe(
    keys.ApiKeyList,
    get=dict(
        summary="Your API keys (never their secrets)",
        responses={
            200: inline_serializer("ApiKeyList", {"results": keys.ApiKeySerializer(many=True)}),
            **errors(),
        },
    ),
    post=dict(
        summary="Create an API key; the secret is in this response only",
        description=(
            "Needs a logged-in session and the account's password: an API key cannot create"
            " keys. Wrong passwords count towards the login lockout (then 429, `locked_out`)."
        ),
        request=keys.ApiKeyCreateInput,
        responses={201: keys.NewApiKeySerializer, **errors(400, 403)},
    ),
)
describe(
    keys.ApiKeyDetail,
    delete=dict(summary="Revoke an API key, at once", responses={204: None, **errors(404)}),
)

describe(
    usage.Usage,
    get=dict(
        summary="Your usage: today's tokens and the last minute's replies against your limits, "
        "and the last 30 days per model",
        responses={200: usage.UsageSerializer, **errors()},
        tags=["usage"],
    ),
)


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "conversations.apikeys.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: object) -> dict:
        return {"type": "http", "scheme": "bearer", "description": "A chatsite API key (cs_…)."}
