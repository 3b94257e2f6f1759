"""Account pages: changing the password, the API key settings page (create a key, its secret
shown once; see and revoke keys), and the user's usage against their budget."""

from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from conversations.access import get_for_user
from conversations.api.usage import USAGE_DAYS, usage_of
from conversations.apikeys import create_key, revoke_key
from conversations.models import ApiKey

# One transaction: changing the password cycles the session, refused while its cache is
# down (chatsite/sessions.py), and the new password must then not be kept either. The site's
# own templates: Django's registration/ names are the admin's pages too.
password_change = transaction.atomic(
    auth_views.PasswordChangeView.as_view(template_name="account/password_change.html")
)
password_change_done = auth_views.PasswordChangeDoneView.as_view(
    template_name="account/password_change_done.html"
)


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, label="Name")


@login_required
@require_http_methods(["GET", "POST"])
def api_keys(request: HttpRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST or None)
    secret = None
    if request.method == "POST" and form.is_valid():
        # Rendered, not redirected: the secret must not travel in a URL or the session.
        _key, secret = create_key(request.user, form.cleaned_data["name"])
        form = ApiKeyForm()
    context = {"form": form, "secret": secret, "keys": ApiKey.objects.for_user(request.user)}
    response = render(request, "account/keys.html", context)
    response["Cache-Control"] = "no-store"  # the page may hold a secret
    return response


@login_required
@require_POST
def api_key_revoke(request: HttpRequest, key_id: UUID) -> HttpResponse:
    key = get_for_user(ApiKey, request.user, key_id)
    revoke_key(key)
    messages.success(request, f"Revoked {key}.")
    return redirect("api-keys-page")


@login_required
def usage(request: HttpRequest) -> HttpResponse:
    context = {"usage": usage_of(request.user), "days": USAGE_DAYS}
    return render(request, "account/usage.html", context)
