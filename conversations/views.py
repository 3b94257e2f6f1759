"""Server-rendered pages. The chat page loads its data as JSON and streams with EventSource."""

from uuid import UUID

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from conversations.access import get_for_user
from conversations.api.serializers import ConversationDetailSerializer, ModelChoiceSerializer
from conversations.models import Conversation, Message
from conversations.providers.registry import available_models, default_model
from conversations.stream_watch import stream_heartbeat_seconds

SIDEBAR_SIZE = 100  # conversations listed with a page; the API gives the rest in pages as big


# Pages that show a user's conversations are never stored by the browser (never_cache): on a
# shared computer, Back after logging out must not bring them up again.
@never_cache
@login_required
def conversation_list(request: HttpRequest) -> HttpResponse:
    # ?source=api lists the conversations tools started over /v1; anything else, the chats.
    source = request.GET.get("source")
    if source not in Conversation.Source.values:
        source = Conversation.Source.CHAT
    context = {**sidebar(request.user, source), **page_data()}
    return render(request, "conversations/list.html", context)


@login_required
@require_POST
def conversation_new(request: HttpRequest) -> HttpResponse:
    conversation = Conversation.objects.create(owner=request.user, model=default_model().id)
    return redirect("conversation-chat", conversation_id=conversation.id)


@never_cache
@login_required
def conversation_chat(request: HttpRequest, conversation_id: UUID) -> HttpResponse:
    conversation = get_for_user(Conversation, request.user, conversation_id)
    data = ConversationDetailSerializer(conversation).data
    context = {
        "conversation": conversation,
        **sidebar(request.user, conversation.source, current=conversation),
        "conversation_data": data,
        # A conversation started over /v1 may bring its own system prompt: shown, as plain text.
        "request_system_prompt": "\n\n".join(
            m["content"] for m in data["messages"] if m["role"] == Message.Role.SYSTEM
        ),
        "max_message_chars": settings.CHATSITE_MAX_MESSAGE_CHARS,
        # A page's stream hears a ping at least this often while the reply is silent: three
        # missed, and a few seconds' grace, mean the connection died without closing.
        "stream_silence_ms": round((3 * stream_heartbeat_seconds(None) + 2) * 1000),
        **page_data(),
    }
    return render(request, "conversations/chat.html", context)


def sidebar(user: AbstractBaseUser, source: str, current: Conversation | None = None) -> dict:
    """The sidebar's conversations: the most recent started the same way (chat, or /v1 by
    tools), and the open one; older ones load on demand (sidebar.js), as a page with
    thousands was slow. A new chat left empty is not listed once another is open."""
    mine = Conversation.objects.for_user(user)
    recent = list(mine.matching(source=source, started=True)[: SIDEBAR_SIZE + 1])
    listed = recent[:SIDEBAR_SIZE]
    if current is not None and current not in listed:
        # In its place: last when older than every one listed; a new chat still empty, not
        # listed as started, anywhere (first, when just made).
        order = (current.updated_at, current.pk)
        after = sum((c.updated_at, c.pk) > order for c in listed)  # listed newest first
        listed.insert(after, current)
    return {
        "conversations": listed,
        "has_older_conversations": len(recent) > SIDEBAR_SIZE,
        "sidebar_size": SIDEBAR_SIZE,
        "sidebar_source": source,
        # Its tabs, only for users with conversations from /v1.
        "has_api_conversations": mine.filter(source=Conversation.Source.API).exists(),
    }


def page_data() -> dict:
    models = available_models()
    return {
        "models_data": ModelChoiceSerializer(models, many=True).data,
        "demo_only": all(choice.provider == "demo" for choice in models),
    }
