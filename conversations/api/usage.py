"""The caller's usage and budget: GET /api/usage/ (and the usage page, from the same data)."""

from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations.budgets import budget_status
from conversations.models import Message

USAGE_DAYS = 30


class TodaySerializer(serializers.Serializer):
    tokens = serializers.IntegerField(help_text="Tokens of the replies started today.")
    tokens_per_day = serializers.IntegerField(allow_null=True, help_text="null: no daily limit.")
    resets_at = serializers.DateTimeField(help_text="The next midnight in the site's time zone.")


class LastMinuteSerializer(serializers.Serializer):
    replies = serializers.IntegerField(help_text="Replies started in the last minute.")
    requests_per_minute = serializers.IntegerField(allow_null=True, help_text="null: no limit.")


class ModelUsageSerializer(serializers.Serializer):
    model = serializers.CharField()
    replies = serializers.IntegerField(source="messages")
    tokens = serializers.IntegerField()


class UsageSerializer(serializers.Serializer):
    username = serializers.CharField(help_text="Whose usage this is: the caller's.")
    today = TodaySerializer()
    last_minute = LastMinuteSerializer()
    by_model = ModelUsageSerializer(many=True, help_text=f"Replies of the last {USAGE_DAYS} days.")


def usage_of(user: AbstractBaseUser) -> dict:
    """The user's budget now and their replies of the last USAGE_DAYS days per model."""
    status = budget_status(user)
    since = timezone.now() - timedelta(days=USAGE_DAYS)
    return {
        "username": user.get_username(),
        "today": {
            "tokens": status.tokens_today,
            "tokens_per_day": status.limits.tokens_per_day or None,  # 0 means no limit
            "resets_at": status.day_resets_at,
        },
        "last_minute": {
            "replies": status.replies_last_minute,
            "requests_per_minute": status.limits.requests_per_minute or None,
        },
        "by_model": list(Message.objects.for_user(user).replies_since(since).usage_by_model()),
    }


class Usage(APIView):
    def get(self, request: Request) -> Response:
        return Response(UsageSerializer(usage_of(request.user)).data)
