"""Messages: what a user asked and each reply, with its status, usage and timing."""

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from django.conf import settings
from django.db import models
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone


class ChosenReply[T](NamedTuple):
    """What Message.chosen_answers reads of a reply, and what it gives back for it (`item`)."""

    parent_id: object
    created_at: datetime
    chosen_at: datetime | None
    content: str
    item: T


class MessageQuerySet(models.QuerySet):
    def for_user(self, user: settings.AUTH_USER_MODEL) -> "MessageQuerySet":
        return self.filter(conversation__owner=user)

    def active_replies(self) -> "MessageQuerySet":
        return self.filter(role=Message.Role.ASSISTANT, status__in=Message.ACTIVE_STATUSES)

    def generated(self) -> "MessageQuerySet":
        """Replies chatsite asked a model for: not the earlier answers a /v1 request brought
        in its history, which name no provider."""
        return self.filter(role=Message.Role.ASSISTANT).exclude(provider="")

    def replies_since(self, when: datetime) -> "MessageQuerySet":
        return self.generated().filter(created_at__gte=when)

    def usage_by_user_and_day(self) -> "MessageQuerySet":
        """Messages and tokens per (day, username), for the admin usage page."""
        return (
            self.annotate(day=TruncDate("created_at"), username=F("conversation__owner__username"))
            .values("day", "username")
            .annotate(messages=Count("pk"), tokens=Coalesce(Sum("total_tokens"), 0))
            .order_by("day", "username")
        )

    def usage_by_model(self) -> "MessageQuerySet":
        """Replies and tokens per model, for the admin usage page."""
        return (
            self.generated()
            .values("model")
            .annotate(messages=Count("pk"), tokens=Coalesce(Sum("total_tokens"), 0))
            .order_by("model")
        )


class Message(models.Model):
    class Role(models.TextChoices):
        SYSTEM = "system"
        USER = "user"
        ASSISTANT = "assistant"

    class Status(models.TextChoices):
        PENDING = "pending"
        STREAMING = "streaming"
        COMPLETE = "complete"
        STOPPED = "stopped"
        INTERRUPTED = "interrupted"
        FAILED = "failed"

    class UsageSource(models.TextChoices):
        PROVIDER = "provider"
        ESTIMATED = "estimated"

    ACTIVE_STATUSES = (Status.PENDING, Status.STREAMING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(
        "Conversation", on_delete=models.CASCADE, related_name="messages"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    # For a reply: the user message it answers. Several replies to one message are alternatives.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="replies"
    )
    content = models.TextField(blank=True)
    reasoning = models.TextField(blank=True)
    # For a reply: its conversation's own system prompt when it was asked, kept as it was
    # (its owner may change it later); empty: the site's CHATSITE_SYSTEM_PROMPT.
    system_prompt = models.TextField(blank=True, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    client_id = models.UUIDField(null=True, blank=True, editable=False)

    provider = models.CharField(max_length=50, blank=True)
    model = models.CharField(max_length=200, blank=True)
    finish_reason = models.CharField(max_length=50, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    total_tokens = models.PositiveIntegerField(null=True, blank=True)
    reasoning_tokens = models.PositiveIntegerField(null=True, blank=True)
    usage_source = models.CharField(max_length=16, choices=UsageSource.choices, blank=True)
    time_to_first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=50, blank=True)
    error = models.TextField(blank=True)
    # Attempts and other per-reply facts (retries, the producing process).
    metadata = models.JSONField(default=dict, blank=True)
    # The process producing this reply and its last sign of life, for crash recovery.
    producer = models.CharField(max_length=100, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True)
    # For a reply: when its owner last chose it among its alternatives (see chosen_answers).
    chosen_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["conversation", "created_at"], name="message_conversation_order"),
            models.Index(fields=["status", "created_at"], name="message_status"),
            models.Index(fields=["model", "created_at"], name="message_model"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation"],
                condition=Q(role="assistant", status__in=["pending", "streaming"]),
                name="one_active_reply_per_conversation",
            ),
            models.UniqueConstraint(
                fields=["conversation", "client_id"],
                condition=Q(client_id__isnull=False),
                name="unique_client_id_per_conversation",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role} message {self.id}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @staticmethod
    def chosen_answers[T](replies: Iterable[ChosenReply[T]]) -> dict[object, T]:
        """Each user message's answer, by its id: the `item` of its reply chosen last that has
        text. A reply is chosen by its owner (chosen_at), else by being made (created_at).
        The model is sent these (reply_job.history) and exports mark them; the chat page shows
        the reply chosen last even without text (a failed one, or stopped before any)."""
        answers = [reply for reply in replies if Message.answers_with(reply.content)]
        answers.sort(key=lambda reply: reply.chosen_at or reply.created_at)
        return {reply.parent_id: reply.item for reply in answers}

    def choose(self) -> bool:
        """Make this reply the one its conversation goes on from, as its owner chose it;
        False if it is gone (deleted with its conversation)."""
        self.chosen_at = timezone.now()
        # One UPDATE of one column: a reply finishing meanwhile keeps its own writes.
        return bool(Message.objects.filter(pk=self.pk).update(chosen_at=self.chosen_at))

    @staticmethod
    def answers_with(content: str) -> bool:
        """Whether a reply's text is its answer, sent back to the model as the conversation
        goes on: not empty, nor only whitespace (a stop after a newline; Anthropic refuses
        such a turn)."""
        return bool(content) and not content.isspace()
