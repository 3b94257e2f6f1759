"""Accounts around the chat: personal API keys, per-user budgets, and the staff access audit."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from conversations.models.conversation import Conversation


class ApiKeyQuerySet(models.QuerySet):
    def for_user(self, user: settings.AUTH_USER_MODEL) -> "ApiKeyQuerySet":
        return self.filter(user=user)

    def active(self) -> "ApiKeyQuerySet":
        return self.filter(revoked_at__isnull=True, user__is_active=True)


class ApiKey(models.Model):
    """A personal API key. Only a hash of the secret is stored; the secret is shown once."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100, blank=True)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    last_four = models.CharField(max_length=4, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The settings page's form that created it: the same form sent again (a reload) finds
    # this key instead of making a second one.
    form_token = models.UUIDField(null=True, blank=True, editable=False)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"
        constraints = [
            models.UniqueConstraint(fields=["user", "form_token"], name="one_key_per_form"),
        ]

    def __str__(self) -> str:
        return f"{self.name or 'API key'} …{self.last_four}"


class AccessRecordQuerySet(models.QuerySet):
    # The audit trail is append-only: bulk edits and deletes are refused too.
    def update(self, **kwargs: object) -> int:
        raise PermissionError("Access records cannot be changed.")

    def delete(self) -> tuple[int, dict]:
        raise PermissionError("Access records cannot be deleted.")


class AccessRecord(models.Model):
    """A staff member opened, exported or searched another user's conversation: who, what,
    when.

    Names and the title are copied, so the record still reads right after a deletion.
    """

    class Channel(models.TextChoices):
        ADMIN = "admin"
        API = "api"

    class Action(models.TextChoices):
        VIEW = "view"
        EXPORT = "export"
        EXPORT_ALL = "export_all", "export all"
        SEARCH = "search"  # found by a search of its messages' text (admin)

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_username = models.CharField(max_length=150)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    owner_username = models.CharField(max_length=150)
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    conversation_title = models.CharField(max_length=200, blank=True)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    action = models.CharField(max_length=16, choices=Action.choices)
    path = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)

    objects = AccessRecordQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.actor_username} {self.action} {self.owner_username}'s data"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise PermissionError("Access records cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict]:
        raise PermissionError("Access records cannot be deleted.")


class UserBudget(models.Model):
    """One user's limits, overriding the site defaults (CHATSITE_TOKENS_PER_DAY and friends)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="budget"
    )
    tokens_per_day = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty: the site default. 0: no limit."
    )
    requests_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Replies started per minute. Empty: the site default. 0: no limit.",
    )

    def __str__(self) -> str:
        return f"Budget of {self.user}"


class DeletedReplyUsage(models.Model):
    """A reply of the last day deleted with its conversation: still counted against its
    owner's budgets (budgets.py), as deleting must not buy more tokens or requests."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField()  # the reply's
    tokens = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["owner", "created_at"], name="deleted_usage_owner_recent")]

    def __str__(self) -> str:
        return f"{self.tokens} tokens of {self.owner_id} deleted"
