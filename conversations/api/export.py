"""Export endpoints: one conversation as JSON, Markdown or JSONL; all of them, streamed.

Staff signed in may export another user's data with `?owner=<username>` (an API key gets
403), which is recorded in the access audit; anyone else's `?owner=` is ignored (see
conversations/audit.py).
"""

from uuid import UUID

from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.http import content_disposition_header
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from conversations.access import get_for_user
from conversations.api.parsers import AnyAccept
from conversations.api.serializers import QueryParams
from conversations.audit import export_owner, record_export_all, record_reads
from conversations.exports import FORMATS, render_one, stream_all
from conversations.models import AccessRecord, Conversation

BULK_FORMATS = ["json", "jsonl"]


class ExportQuery(QueryParams):
    format = serializers.ChoiceField(choices=list(FORMATS), default="json")
    owner = serializers.CharField(
        required=False, allow_blank=True, help_text="Staff only: another user's username."
    )


class BulkExportQuery(ExportQuery):
    format = serializers.ChoiceField(choices=BULK_FORMATS, default="json")
    source = serializers.ChoiceField(
        choices=Conversation.Source.choices,
        required=False,
        help_text="Only these: chat (the pages and this API) or api (/v1). Default: all.",
    )


class ConversationExport(APIView):
    content_negotiation_class = AnyAccept  # a file, whatever Accept says

    def get(self, request: Request, conversation_id: UUID) -> HttpResponse:
        query = ExportQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        format = query.validated_data["format"]
        conversation = get_for_user(Conversation, export_owner(request), conversation_id)
        record_reads(request, AccessRecord.Channel.API, AccessRecord.Action.EXPORT, [conversation])
        content_type, extension = FORMATS[format]
        response = HttpResponse(render_one(conversation, format), content_type=content_type)
        return as_download(response, f"chatsite-{conversation.id}.{extension}")


class BulkExport(APIView):
    content_negotiation_class = AnyAccept

    def get(self, request: Request) -> StreamingHttpResponse:
        query = BulkExportQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        format = query.validated_data["format"]
        owner = export_owner(request)
        record_export_all(request, owner)
        conversations = Conversation.objects.for_user(owner).order_by("created_at", "id")
        conversations = conversations.matching(source=query.validated_data.get("source", ""))
        content_type, extension = FORMATS[format]
        # An async iterator: under ASGI a sync one would be read whole before sending.
        response = StreamingHttpResponse(stream_all(conversations, format), content_type)
        day = timezone.localdate().isoformat()
        return as_download(response, f"chatsite-{owner.get_username()}-{day}.{extension}")


def as_download(response: HttpResponse, filename: str) -> HttpResponse:
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = "private, no-store"
    return response
