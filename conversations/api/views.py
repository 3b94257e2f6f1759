"""The JSON API the pages and tools use. Each view validates, calls a model method or a plain
function (budgets.py, producers.py) that changes state, and serializes."""

import functools
from collections.abc import Callable
from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations.access import get_conversation_with_budget, get_for_user
from conversations.api.errors import api_error
from conversations.api.pagination import Pages
from conversations.api.serializers import (
    ConversationCreateInput,
    ConversationDetailSerializer,
    ConversationListQuery,
    ConversationSerializer,
    ConversationUpdateInput,
    MessageCreateInput,
    ModelChoiceSerializer,
    RegenerateInput,
    message_data,
    validated,
)
from conversations.budgets import BudgetExceeded, check_budget, delete_conversation, rate_held
from conversations.models import ClientIdReused, Conversation, Message, ReplyInProgress
from conversations.producers import CONVERSATION_DELETED, PRODUCER_ID
from conversations.providers.base import ModelChoice
from conversations.providers.registry import available_models, default_model, find_model
from conversations.recovery import stop_reply_now

REPLY_IN_PROGRESS = (
    "The previous reply is still being generated. Stop it or wait for it to finish first."
)
STILL_STARTING = "Replies keep starting in this conversation: stop them, then delete it."
DELETE_ROUNDS = 3
CLIENT_ID_REUSED = (
    "This client_id (or Idempotency-Key) was sent before with a different message, or for"
    " another regeneration. A new message or regeneration needs a new one; the same one sends"
    " back what was stored."
)


class ModelList(APIView):
    def get(self, request: Request) -> Response:
        return Response({"models": ModelChoiceSerializer(available_models(), many=True).data})


class ConversationList(APIView):
    def get(self, request: Request) -> Response:
        query = ConversationListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        conversations = Conversation.objects.for_user(request.user).matching(**query.validated_data)
        pages = Pages()
        page = pages.paginate_queryset(conversations, request, view=self)
        return pages.get_paginated_response(ConversationSerializer(page, many=True).data)

    def post(self, request: Request) -> Response:
        data = ConversationCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        conversation = Conversation.objects.create(
            owner=request.user,
            title=data.validated_data["title"],
            model=data.validated_data.get("model") or default_model().id,
            system_prompt=data.validated_data["system_prompt"],
        )
        return Response(ConversationSerializer(conversation).data, status=status.HTTP_201_CREATED)


class ConversationDetail(APIView):
    def get(self, request: Request, conversation_id: UUID) -> Response:
        conversation = get_for_user(Conversation, request.user, conversation_id)
        return Response(ConversationDetailSerializer(conversation).data)

    def patch(self, request: Request, conversation_id: UUID) -> Response:
        conversation = get_for_user(Conversation, request.user, conversation_id)
        data = ConversationUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        conversation.change(**data.validated_data)
        return Response(ConversationSerializer(conversation).data)

    def delete(self, request: Request, conversation_id: UUID) -> Response:
        conversation = get_for_user(Conversation, request.user, conversation_id)
        if not stop_replies_and_delete(conversation):
            return api_error("reply_in_progress", STILL_STARTING, status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MessageCreate(APIView):
    def post(self, request: Request, conversation_id: UUID) -> Response:
        # The owner's budget comes with the conversation, in one query.
        conversation = get_conversation_with_budget(request.user, conversation_id)
        data = validated(MessageCreateInput, request.data)
        client_id = idempotency_key(request, data.get("client_id"))
        model = find_model(data.get("model") or conversation.model) or default_model()
        try:
            user_message, reply, created = post_within_budget(
                conversation, data["content"], model, client_id
            )
        except ReplyInProgress:
            return api_error("reply_in_progress", REPLY_IN_PROGRESS, status.HTTP_409_CONFLICT)
        except ClientIdReused:
            return api_error("client_id_reused", CLIENT_ID_REUSED, 422)
        except Conversation.DoesNotExist:  # deleted meanwhile, from another window
            raise Http404 from None
        return started(Response(message_pair(user_message, reply), status=201), reply, created)


def stop_replies_and_delete(conversation: Conversation) -> bool:
    """Stop its running replies, then delete it: deleting must not leave the model generating
    (and billing), and a window following a reply is told why. A message sent from another
    window in between starts a reply stopped in turn. False if replies keep starting."""
    for _ in range(DELETE_ROUNDS):
        for reply in conversation.messages.active_replies():
            stop_reply_now(reply, CONVERSATION_DELETED)
        if delete_conversation(conversation):  # its recent usage still counts (budgets.py)
            return True
    return False


def within_budget[T](
    owner: AbstractBaseUser, store: Callable[[], T], sent_before: Callable[[], T | None]
) -> T:
    """What store() stores, if its owner's budget allows (429 before anything is stored or a
    provider is called). A request sent before (what sent_before() finds) is given back
    whatever the budget says now: it was counted then, and its sender only missed the answer."""
    try:
        check_budget(owner)
        with rate_held(owner):
            return store()
    except BudgetExceeded:
        if (earlier := sent_before()) is None:
            raise
        return earlier


def post_within_budget(
    conversation: Conversation, content: str, model: ModelChoice, client_id: UUID | None
) -> tuple[Message, Message, bool]:
    """Store the message and its pending reply (within_budget); and whether they are new."""

    def sent_before() -> tuple[Message, Message, bool] | None:
        pair = client_id and conversation.sent_before(client_id, content)
        return (*pair, False) if pair else None

    store = functools.partial(
        conversation.post_user_message, content, model, client_id, PRODUCER_ID
    )
    return within_budget(conversation.owner, store, sent_before)


class ReplyStop(APIView):
    def post(self, request: Request, message_id: UUID) -> Response:
        reply = get_for_user(Message, request.user, message_id)
        if reply.role != Message.Role.ASSISTANT:
            return api_error("not_a_reply", "Only a reply can be stopped.")
        if reply.is_active:
            stop_reply_now(reply)
            reply.refresh_from_db()
        return Response(message_data(reply))


class ReplyChoose(APIView):
    """The reply its conversation goes on from, among its alternatives (the chat page's arrows)."""

    def post(self, request: Request, message_id: UUID) -> Response:
        reply = get_for_user(Message, request.user, message_id)
        if reply.role != Message.Role.ASSISTANT:
            return api_error("not_a_reply", "Only a reply can be chosen.")
        if not reply.choose():  # deleted meanwhile, with its conversation
            raise Http404
        return Response(message_data(reply))


class ReplyRegenerate(APIView):
    def post(self, request: Request, message_id: UUID) -> Response:
        # Its conversation, the owner's budget and the message it answers, in one query.
        related = ["conversation__owner__budget", "parent"]
        message = get_for_user(Message, request.user, message_id, related=related)
        data = validated(RegenerateInput, request.data)
        client_id = idempotency_key(request, data.get("client_id"))
        user_message = message if message.role == Message.Role.USER else message.parent
        if user_message is None:
            return api_error("not_regenerable", "This message has nothing to answer.")
        conversation = message.conversation
        model = find_model(data.get("model") or message.model or conversation.model)
        try:
            reply, created = regenerate_within_budget(
                conversation, user_message, model or default_model(), client_id
            )
        except ReplyInProgress:
            return api_error("reply_in_progress", REPLY_IN_PROGRESS, status.HTTP_409_CONFLICT)
        except ClientIdReused:
            return api_error("client_id_reused", CLIENT_ID_REUSED, 422)
        except Conversation.DoesNotExist:  # deleted meanwhile, from another window
            raise Http404 from None
        return started(Response(message_pair(user_message, reply), status=201), reply, created)


def regenerate_within_budget(
    conversation: Conversation, user_message: Message, model: ModelChoice, client_id: UUID | None
) -> tuple[Message, bool]:
    """Store another pending reply to `user_message` (within_budget); and whether it is new."""

    def sent_before() -> tuple[Message, bool] | None:
        reply = client_id and conversation.regenerated_before(client_id, user_message)
        return (reply, False) if reply else None

    store = functools.partial(conversation.add_reply, user_message, model, client_id, PRODUCER_ID)
    return within_budget(conversation.owner, store, sent_before)


def started(response: Response, reply: Message, created: bool) -> Response:
    """A new reply starts once the response is ready (reply_start.py); one sent back again
    was started by the request that stored it."""
    if created:
        response.reply_to_start = reply
    else:
        response["Idempotent-Replayed"] = "true"
    return response


def message_pair(user_message: Message, reply: Message) -> dict:
    return {
        "user_message": message_data(user_message),
        "assistant_message": message_data(reply),
        "stream_url": f"/api/messages/{reply.id}/stream/",
    }


def idempotency_key(request: Request, client_id: UUID | None) -> UUID | None:
    """The body's client_id or the Idempotency-Key header; both may be sent if they agree."""
    header = request.headers.get("Idempotency-Key")
    if header is None:
        return client_id
    try:
        # As the IETF draft writes it, a structured-field string: "8e03978e-…".
        quoted = len(header) > 1 and header[0] == header[-1] == '"'
        key = UUID(header[1:-1] if quoted else header)
    except ValueError:
        raise serializers.ValidationError(
            {"Idempotency-Key": ["Must be a UUID, like the client_id field."]}
        ) from None
    if client_id is not None and client_id != key:
        raise serializers.ValidationError(
            {"Idempotency-Key": ["Differs from client_id: send one of them, or the same UUID."]}
        )
    return key
