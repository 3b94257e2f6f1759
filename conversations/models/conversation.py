"""Conversations: a user's chat with a model, holding its messages (message.py), and the
writes that add a user message and its pending reply together."""

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, models, router, transaction
from django.db.models import Aggregate, Count, Exists, Max, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from conversations import sql_once
from conversations.models.message import Message

if TYPE_CHECKING:
    from conversations.providers.registry import ModelChoice

TITLE_LENGTH = 80


class ConversationQuerySet(models.QuerySet):
    def for_user(self, user: settings.AUTH_USER_MODEL) -> "ConversationQuerySet":
        return self.filter(owner=user)

    def matching(
        self,
        updated_after: datetime | None = None,
        model: str = "",
        q: str = "",
        source: str = "",
        started: bool = False,
    ) -> "ConversationQuerySet":
        """The API list filters; `q` searches titles and message text."""
        conversations = self.filter(source=source) if source else self
        if started:
            conversations = conversations.started()
        if updated_after is not None:
            conversations = conversations.filter(updated_at__gt=updated_after)
        if model:
            conversations = conversations.filter(model=model)
        if q:
            in_text = Message.objects.filter(conversation=OuterRef("pk"), content__icontains=q)
            conversations = conversations.filter(Q(title__icontains=q) | Exists(in_text))
        return conversations

    def started(self) -> "ConversationQuerySet":
        """Conversations with a message, a title or a system prompt: not a "New chat" opened
        and left empty, which the sidebar leaves out."""
        messages = Message.objects.filter(conversation=OuterRef("pk"))
        # The columns first: a title (set by the first message) nearly always decides.
        return self.filter(~Q(title="") | ~Q(system_prompt="") | Exists(messages))

    def with_reply_status(self, status: str) -> "ConversationQuerySet":
        replies = Message.objects.filter(
            conversation=OuterRef("pk"), role=Message.Role.ASSISTANT, status=status
        )
        return self.filter(Exists(replies))

    def with_stats(self) -> "ConversationQuerySet":
        """Message count, total tokens and last activity, in the same query. Each is a
        subquery: over a join (the admin searching message text), each message would count
        once per match."""
        messages = Message.objects.filter(conversation=OuterRef("pk")).order_by()
        per_conversation = messages.values("conversation")

        def of_messages(aggregate: Aggregate) -> Subquery:
            return Subquery(per_conversation.annotate(value=aggregate).values("value"))

        last_message = Max(Coalesce("completed_at", "created_at"))
        return self.annotate(
            message_count=Coalesce(of_messages(Count("pk")), 0),
            token_total=of_messages(Sum("total_tokens")),
            last_activity=Coalesce(of_messages(last_message), "updated_at"),
        )


class Conversation(models.Model):
    class Source(models.TextChoices):
        CHAT = "chat", "Chat"  # the chat pages, or the JSON API they use
        API = "api", "OpenAI-compatible API"  # POST /v1/chat/completions, one per request

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(max_length=200, blank=True)
    model = models.CharField(max_length=200, help_text="Default model id for new replies")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)
    # What the model is told first in this conversation, set by its owner; empty: the
    # system messages a /v1 request brought, or else the site's CHATSITE_SYSTEM_PROMPT.
    system_prompt = models.TextField(blank=True)
    # Tools calling /v1 start a conversation per request: kept apart from the chat sidebar.
    source = models.CharField(
        max_length=8, choices=Source.choices, default=Source.CHAT, editable=False
    )

    objects = ConversationQuerySet.as_manager()

    class Meta:
        # The id breaks ties: pages of a list ordered by time alone may repeat or skip
        # conversations updated at the same instant (a database orders ties as it likes).
        ordering = ["-updated_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-updated_at", "-id"], name="conversation_owner_recent")
        ]

    def __str__(self) -> str:
        return self.title or "New chat"

    def change(self, **fields: object) -> None:
        """Set what its owner may change (its title, its system prompt) and save it, with
        updated_at: a tool syncing with ?updated_after= must see the change (and the lists,
        newest first, show it first)."""
        fields["updated_at"] = timezone.now()
        # An UPDATE, not save(update_fields=…): deleted meanwhile (another tab), it is not
        # found (a 404), not the DatabaseError save raises for a row it did not find.
        if not Conversation.objects.filter(pk=self.pk).update(**fields):
            raise Conversation.DoesNotExist("The conversation was deleted.")
        for name, value in fields.items():
            setattr(self, name, value)

    def post_user_message(
        self, content: str, model: "ModelChoice", client_id: uuid.UUID | None, producer: str
    ) -> tuple["Message", "Message", bool]:
        """Store the user's message and a pending reply; return them and whether they are new.

        One transaction, so a user message never exists without its reply. A repeated
        client_id returns the first pair (ClientIdReused if it came with other content); a
        reply still generating raises ReplyInProgress, the conversation deleted meanwhile
        DoesNotExist.
        """
        if client_id is not None and (existing := self.sent_before(client_id, content)):
            return *existing, False
        user_message = Message(
            conversation=self,
            role=Message.Role.USER,
            content=content,
            status=Message.Status.COMPLETE,
            client_id=client_id,
            completed_at=timezone.now(),
        )
        reply = self.pending_reply_to(user_message, model, producer, self.own_system_prompt())
        try:
            # Both rows or neither: the partial unique index on active replies is the lock.
            # One INSERT for both (their ids are made here), as SQLite's one write lock is
            # held from BEGIN to COMMIT and every other writer waits for it; its SQL and the
            # touch's are written once (sql_once.py): every reply waits for them.
            with transaction.atomic():
                sql_once.insert([user_message, reply], router.db_for_write(Message))
                self._touch(model.id, first_message=content)
        except IntegrityError:
            if client_id is not None and (existing := self.sent_before(client_id, content)):
                return *existing, False
            # Another reply was generating (it may have ended since: this one was refused).
            raise ReplyInProgress from None
        return user_message, reply, True

    def add_reply(
        self,
        user_message: "Message",
        model: "ModelChoice",
        client_id: uuid.UUID | None,
        producer: str,
    ) -> tuple["Message", bool]:
        """A new pending reply to an earlier user message (regenerate), the old ones staying;
        and whether it is new. A repeated client_id returns the first one (ClientIdReused if
        it came for another message); a reply still generating raises ReplyInProgress."""
        reply = self.pending_reply_to(user_message, model, producer, self.own_system_prompt())
        reply.client_id = client_id
        try:
            with transaction.atomic():  # the active-reply index and the touch go together
                reply.save(force_insert=True)
                self._touch(model.id)
        except IntegrityError:  # the client_id's unique index, or the active reply's
            if client_id is not None and (
                earlier := self.regenerated_before(client_id, user_message)
            ):
                return earlier, False
            raise ReplyInProgress from None
        return reply, True

    def own_system_prompt(self, messages: "Iterable[Message] | None" = None) -> str:
        """The system prompt this conversation's next reply is asked under, unless it is the
        site's: its owner's, else the system messages the /v1 request that began it brought
        (read from `messages`, its messages in order, when given)."""
        if self.system_prompt or self.source != Conversation.Source.API:
            return self.system_prompt
        if messages is None:
            messages = self.messages.filter(role=Message.Role.SYSTEM)
        return "\n\n".join(m.content for m in messages if m.role == Message.Role.SYSTEM)

    def pending_reply_to(
        self, user_message: "Message", model: "ModelChoice", producer: str, system_prompt: str
    ) -> "Message":
        """A pending reply asked under `system_prompt` (own_system_prompt()), not saved yet."""
        return Message(
            conversation=self,
            role=Message.Role.ASSISTANT,
            system_prompt=system_prompt,
            status=Message.Status.PENDING,
            provider=model.provider,
            model=model.id,
            parent=user_message,
            producer=producer,
            heartbeat_at=timezone.now(),
        )

    def sent_before(self, client_id: uuid.UUID, content: str) -> tuple["Message", "Message"] | None:
        """The message stored with this client_id and its first reply, if it was sent before;
        ClientIdReused if that message says something else (what was sent would be lost), or
        the client_id was a regeneration's."""
        user_message = self.messages.filter(client_id=client_id).first()
        if user_message is None:
            return None
        if user_message.role != Message.Role.USER or user_message.content != content:
            raise ClientIdReused
        return user_message, user_message.replies.order_by("created_at").first()

    def regenerated_before(self, client_id: uuid.UUID, user_message: "Message") -> "Message | None":
        """The reply a regeneration with this client_id made, if it was asked before;
        ClientIdReused if the client_id came for another message or was a message's own."""
        reply = self.messages.filter(client_id=client_id).first()
        if reply is None:
            return None
        if reply.parent_id != user_message.pk:  # a message's own, or another message's reply
            raise ClientIdReused
        return reply

    def _touch(self, model_id: str, first_message: str = "") -> None:
        """Newest activity first in lists; the last model used is the one the picker offers.
        DoesNotExist if it was deleted meanwhile (from another window): said here, in the
        transaction, as its foreign keys are checked only when the outermost one commits."""
        fields = {"updated_at": timezone.now(), "model": model_id}
        if first_message and not self.title:
            fields["title"] = title_from(first_message)
        if not sql_once.update(Conversation, self.pk, fields, router.db_for_write(Conversation)):
            raise self.DoesNotExist("Deleted while a message or reply was stored.")
        for name, value in fields.items():
            setattr(self, name, value)


def title_from(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1].rstrip() + "…"


class ReplyInProgress(Exception):
    """The conversation's previous reply is still being generated."""


class ClientIdReused(Exception):
    """A client_id (an idempotency key) sent again with a different message."""
