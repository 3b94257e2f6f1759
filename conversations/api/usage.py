"""The caller's usage and budget: GET /api/usage/ (and the usage page, from the same data)."""

from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations.budgets import USAGE_DAYS, usage_of


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


class Usage(APIView):
    def get(self, request: Request) -> Response:
        return Response(UsageSerializer(usage_of(request.user)).data)
