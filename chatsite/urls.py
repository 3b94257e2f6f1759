from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views import defaults

from conversations import account, views
from conversations.api.openai_compat import views as openai_compat
from conversations.api.openai_compat.errors import openai_error

urlpatterns = [
    path("", views.conversation_list, name="conversation-list"),
    path("c/new/", views.conversation_new, name="conversation-new"),
    path("c/<uuid:conversation_id>/", views.conversation_chat, name="conversation-chat"),
    path("accounts/password_change/", account.password_change, name="password_change"),
    path(
        "accounts/password_change/done/",
        account.password_change_done,
        name="password_change_done",
    ),
    path("accounts/logged-out/", account.logged_out, name="logged-out"),
    # Log in and out only: not Django's password reset by e-mail, which chatsite does not
    # send (staff set passwords), and whose answers would tell which addresses have accounts.
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("settings/usage/", account.usage, name="usage-page"),
    path("settings/keys/", account.api_keys, name="api-keys-page"),
    path("settings/keys/<uuid:key_id>/revoke/", account.api_key_revoke, name="api-key-revoke"),
    path("api/", include("conversations.api.urls")),
    # OpenAI's API paths, for its SDKs and tools: base_url is this site's /v1.
    path("v1/chat/completions", openai_compat.chat_completions, name="openai-chat-completions"),
    path("v1/models", openai_compat.model_list, name="openai-models"),
    # A model's id holds a colon ("openai:gpt-4o-mini") and may hold a slash (Ollama's tags).
    path("v1/models/<path:model_id>", openai_compat.model_detail, name="openai-model"),
    path("admin/", admin.site.urls),
]


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Unknown API paths answer in JSON like every API error (/v1's as OpenAI's do); pages
    get the 404 page."""
    error = {"code": "not_found", "message": "Not found."}
    if request.path.startswith("/v1/"):
        return JsonResponse({"error": openai_error(error, 404)}, status=404)
    if request.path.startswith("/api/"):
        return JsonResponse({"error": error}, status=404)
    return defaults.page_not_found(request, exception)


handler404 = not_found
