"""API keys through the API: list, create (the secret is in this one response), revoke.

A key cannot create keys: creating one needs a logged-in session and the account's password,
so neither a leaked key nor a session alone (left open, or stolen) can mint keys that outlive
a revocation, a log-out or a password change. Listing and revoking work with either.
"""

from uuid import UUID

from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_variables
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chatsite.passwords import password_confirmed
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


PASSWORD_INCORRECT = "The password is not correct, so no key was created."


class ApiKeyCreateInput(serializers.Serializer):
    name = TextField(max_length=100, required=False, allow_blank=True, default="")
    password = serializers.CharField(
        write_only=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Your account's password: a session alone cannot create a key.",
    )

    @method_decorator(sensitive_variables("password"))
    def validate_password(self, password: str) -> str:
        request = self.context["request"]
        # The Django request: axes marks it when locked out, and its middleware answers 429.
        if not password_confirmed(request._request, request.user.get_username(), password):
            raise serializers.ValidationError(PASSWORD_INCORRECT, code="password_incorrect")
        return password


class ApiKeyList(APIView):
    def get(self, request: Request) -> Response:
        keys = ApiKey.objects.for_user(request.user)
        return Response({"results": ApiKeySerializer(keys, many=True).data})

    @method_decorator(sensitive_variables("data"))  # it holds the password
    def post(self, request: Request) -> Response:
        if isinstance(request.auth, ApiKey):
            return api_error(
                "session_required",
                "Create API keys while logged in (the settings page or a session), not with a key.",
                status.HTTP_403_FORBIDDEN,
            )
        data = ApiKeyCreateInput(data=request.data, context={"request": request})
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
