"""Per-user budgets: tokens per day and replies started per minute.

Limits come from the user's UserBudget row when it sets them, else from the site settings
(CHATSITE_TOKENS_PER_DAY, CHATSITE_REQUESTS_PER_MINUTE); 0 means no limit. Both are counted
from stored replies (with those of the last day deleted since, DeletedReplyUsage), so chat
pages and API keys share one budget and every server process sees the same numbers.
check_budget runs before anything is stored or a provider is called, and rate_held counts
the replies started in the last minute again where the new reply is stored, so requests
arriving at the same instant cannot all take the last one. The token budget is soft: a reply's
tokens count once it ends, so replies started in several conversations at once all run.
"""

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Min, QuerySet, Sum
from django.utils import timezone
from rest_framework import exceptions, status

from conversations.models import Conversation, DeletedReplyUsage, Message, UserBudget

RATE_WINDOW = timedelta(minutes=1)
COUNTED_FOR = timedelta(days=1)  # the longest window a budget looks back over


@dataclass(frozen=True)
class Limits:
    tokens_per_day: int  # 0: no limit
    requests_per_minute: int


class BudgetExceeded(exceptions.APIException):
    """429 with the limit in the message and Retry-After (DRF sets it from `wait`)."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS

    def __init__(self, message: str, code: str, resets_at: datetime) -> None:
        super().__init__(message, code)
        self.wait = max(1, math.ceil((resets_at - timezone.now()).total_seconds()))


def limits_for(user: AbstractBaseUser) -> Limits:
    """The user's own limits where set (an empty field means the site default)."""
    try:
        own = user.budget  # no query when the user was loaded with it (select_related)
    except UserBudget.DoesNotExist:
        own = UserBudget()
    tokens, requests = own.tokens_per_day, own.requests_per_minute
    return Limits(
        settings.CHATSITE_TOKENS_PER_DAY if tokens is None else tokens,
        settings.CHATSITE_REQUESTS_PER_MINUTE if requests is None else requests,
    )


def check_budget(user: AbstractBaseUser) -> None:
    """Raise BudgetExceeded when `user` may not start another reply now."""
    limits = limits_for(user)
    now = timezone.now()
    if limits.requests_per_minute:
        check_rate(user, limits.requests_per_minute, now)
    if limits.tokens_per_day:
        check_daily_tokens(user, limits.tokens_per_day, now)


@contextmanager
def rate_held(user: AbstractBaseUser) -> Iterator[None]:
    """Store a new reply of `user` inside this: with a requests-per-minute limit, a transaction
    in which the user's other starts wait and the limit is checked again (BudgetExceeded rolls
    back what was stored). Without a limit, no transaction of its own."""
    limit = limits_for(user).requests_per_minute
    if not limit:
        yield
        return
    # One start at a time per user, so each counts the ones before it: PostgreSQL locks the
    # user's row; SQLite's IMMEDIATE transactions hold the one write lock from BEGIN.
    with transaction.atomic():
        # NO KEY: rows pointing at the user (a deleted conversation's kept usage) still commit.
        users = get_user_model().objects.select_for_update(no_key=True).filter(pk=user.pk)
        list(users.values_list("pk", flat=True))
        check_rate(user, limit, timezone.now())
        yield


def check_rate(user: AbstractBaseUser, limit: int, now: datetime) -> None:
    count, first = replies_started_since(user, now - RATE_WINDOW)
    if count < limit:
        return
    resets_at = first + RATE_WINDOW  # when the oldest one leaves the window
    raise BudgetExceeded(
        f"You have reached your limit of {limit} requests per minute. "
        f"It resets at {clock(resets_at)}, in {seconds_until(resets_at, now)} seconds.",
        "rate_limited",
        resets_at,
    )


def check_daily_tokens(user: AbstractBaseUser, limit: int, now: datetime) -> None:
    day_start = start_of_day(now)
    used = tokens_since(user, day_start)
    if used < limit:
        return
    resets_at = day_start + timedelta(days=1)
    raise BudgetExceeded(
        f"You have used your daily budget of {limit:,} tokens ({used:,} used today). "
        f"It resets at {clock(resets_at)}.",
        "token_budget_exceeded",
        resets_at,
    )


def replies_started_since(user: AbstractBaseUser, moment: datetime) -> tuple[int, datetime | None]:
    """How many replies `user` started since `moment`, and when the first of them was."""
    window = {"count": Count("pk"), "first": Min("created_at")}
    stored = Message.objects.for_user(user).replies_since(moment).aggregate(**window)
    gone = deleted_since(user, moment).aggregate(**window)
    firsts = [first for first in (stored["first"], gone["first"]) if first is not None]
    return stored["count"] + gone["count"], min(firsts, default=None)


def start_of_day(now: datetime) -> datetime:
    """Midnight in the site's time zone: daily budgets reset then."""
    return timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)


def tokens_since(user: AbstractBaseUser, moment: datetime) -> int:
    replies = Message.objects.for_user(user).replies_since(moment)
    stored = replies.aggregate(tokens=Sum("total_tokens"))["tokens"] or 0
    deleted = deleted_since(user, moment).aggregate(tokens=Sum("tokens"))["tokens"] or 0
    return stored + deleted


def deleted_since(user: AbstractBaseUser, moment: datetime) -> QuerySet[DeletedReplyUsage]:
    """What `user`'s replies since `moment` used, kept when their conversations were deleted."""
    return DeletedReplyUsage.objects.filter(owner=user, created_at__gte=moment)


def delete_conversation(conversation: Conversation) -> bool:
    """Delete a conversation; its replies of the last day still count against the budgets.
    False, and nothing deleted, while a reply of it is running: stop it first."""
    now, owner_id = timezone.now(), conversation.owner_id
    # Usage kept exactly when its replies go, and no reply starting meanwhile (it would be
    # deleted unstopped, generating on): PostgreSQL locks the row a new message's INSERT
    # needs; SQLite's IMMEDIATE transaction holds its one write lock.
    with transaction.atomic():
        found = Conversation.objects.select_for_update().filter(pk=conversation.pk)
        if not list(found.values_list("pk", flat=True)):
            return True  # deleted meanwhile
        if conversation.messages.active_replies().exists():
            return False
        recent = conversation.messages.replies_since(now - COUNTED_FOR)
        spent = [
            DeletedReplyUsage(owner_id=owner_id, created_at=created, tokens=tokens or 0)
            for created, tokens in recent.values_list("created_at", "total_tokens")
        ]
        DeletedReplyUsage.objects.bulk_create(spent)
        conversation.delete()
        # What no budget looks at any more goes.
        expired = DeletedReplyUsage.objects.filter(created_at__lt=now - COUNTED_FOR)
        expired.filter(owner_id=owner_id).delete()
    return True


@dataclass(frozen=True)
class BudgetStatus:
    """Where a user stands against their limits now, for their usage page and GET /api/usage/."""

    limits: Limits
    tokens_today: int
    day_resets_at: datetime
    replies_last_minute: int


def budget_status(user: AbstractBaseUser) -> BudgetStatus:
    now = timezone.now()
    day_start = start_of_day(now)
    return BudgetStatus(
        limits=limits_for(user),
        tokens_today=tokens_since(user, day_start),
        day_resets_at=day_start + timedelta(days=1),
        replies_last_minute=replies_started_since(user, now - RATE_WINDOW)[0],
    )


def clock(moment: datetime) -> str:
    local = timezone.localtime(moment)
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()}"


def seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


USAGE_DAYS = 30  # the usage page's and GET /api/usage/'s replies per model


def usage_of(user: AbstractBaseUser) -> dict:
    """The user's budget now and their replies of the last USAGE_DAYS days per model."""
    budget = budget_status(user)
    since = timezone.now() - timedelta(days=USAGE_DAYS)
    return {
        "username": user.get_username(),
        "today": {
            "tokens": budget.tokens_today,
            "tokens_per_day": budget.limits.tokens_per_day or None,  # 0 means no limit
            "resets_at": budget.day_resets_at,
        },
        "last_minute": {
            "replies": budget.replies_last_minute,
            "requests_per_minute": budget.limits.requests_per_minute or None,
        },
        "by_model": list(Message.objects.for_user(user).replies_since(since).usage_by_model()),
    }
