"""API keys through the API: list, create (the secret is in this one response), revoke.

A key cannot create keys: creating one needs a logged-in session, so a leaked key cannot
mint replacements that outlive its revocation. Listing and revoking work with either.
"""

from uuid import UUID

from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations.access import get_for_user
from conversations.api.errors import api_error
from conversations.api.serializers import TextField
from conversations.apikeys import create_key, revoke_key
from conversations.models import ApiKey


class ApiKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = ["id", "name", "last_four", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = fields


class NewApiKeySerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The secret. It is not shown again.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class ApiKeyCreateInput(serializers.Serializer):
    name = TextField(max_length=100, required=False, allow_blank=True, default="")


class ApiKeyList(APIView):
    def get(self, request: Request) -> Response:
        keys = ApiKey.objects.for_user(request.user)
        return Response({"results": ApiKeySerializer(keys, many=True).data})

    def post(self, request: Request) -> Response:
        if isinstance(request.auth, ApiKey):
            return api_error(
                "session_required",
                "Create API keys while logged in (the settings page or a session), not with a key.",
                status.HTTP_403_FORBIDDEN,
            )
        data = ApiKeyCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        key, secret = create_key(request.user, data.validated_data["name"])
        key.key = secret
        response = Response(NewApiKeySerializer(key).data, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"  # it holds the secret, shown this once
        return response


class ApiKeyDetail(APIView):
    def delete(self, request: Request, key_id: UUID) -> Response:
        revoke_key(get_for_user(ApiKey, request.user, key_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
