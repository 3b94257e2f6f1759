"""Account pages: changing the password, the page logging out leads to, the API key settings
page (create a key, its secret shown once; see keys, and revoke one after confirming), and
the user's usage against their budget."""

import uuid
from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods

from chatsite.passwords import PasswordChangeView, password_confirmed
from conversations.access import get_for_user
from conversations.apikeys import create_key_once, revoke_key
from conversations.budgets import USAGE_DAYS, usage_of
from conversations.models import ApiKey

# One transaction: changing the password cycles the session, refused while its cache is
# down (chatsite/sessions.py), and the new password must then not be kept either. The site's
# own templates: Django's registration/ names are the admin's pages too.
# The current password is checked as a login is (chatsite/passwords.py).
password_change = transaction.atomic(
    PasswordChangeView.as_view(template_name="account/password_change.html")
)
password_change_done = auth_views.PasswordChangeDoneView.as_view(
    template_name="account/password_change_done.html"
)


STALE_FORM = "The form was out of date, so no key was created: create the key again below."
PASSWORD_INCORRECT = "Your password was not correct, so no key was created."


def logged_out(request: HttpRequest) -> HttpResponse:
    """Where logging out leads: its script clears the drafts this tab kept, and tells the
    site's other open tabs to clear theirs (static/chatsite/drafts.js)."""
    return render(request, "account/logged_out.html")


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, label="Name")
    # New each time the form is drawn: the same form sent twice creates one key.
    form_token = forms.UUIDField(
        widget=forms.HiddenInput,
        error_messages={"required": STALE_FORM, "invalid": STALE_FORM},
    )
    # A session alone (left open, or stolen) must not mint a key that outlives it.
    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args: object, request: HttpRequest | None = None, **kwargs: object):
        self.request = request  # None: the password is not checked (a form drawn again)
        super().__init__(*args, **kwargs)

    @method_decorator(sensitive_variables("password"))
    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if self.request is None or "form_token" in self.errors:
            return password  # nothing will be created: no guess is counted
        username = self.request.user.get_username()
        if not password_confirmed(self.request, username, password):
            raise ValidationError(PASSWORD_INCORRECT, code="password_incorrect")
        return password


def _new_key_form() -> ApiKeyForm:
    return ApiKeyForm(initial={"form_token": uuid.uuid4()})


def _refused(sent: ApiKeyForm) -> ApiKeyForm:
    """The form again with its errors, and its token if valid (nothing was created with
    it), else a new one: the next submit must not be refused as out of date."""
    if "form_token" not in sent.errors:
        return sent
    data = sent.data.copy()
    data["form_token"] = str(uuid.uuid4())
    form = ApiKeyForm(data)
    form.is_valid()  # its errors: the name's, and the password's if none was sent
    return form


@sensitive_post_parameters("password")
@login_required
@require_http_methods(["GET", "POST"])
def api_keys(request: HttpRequest) -> HttpResponse:
    form, key, secret = _new_key_form(), None, None
    if request.method == "POST":
        sent = ApiKeyForm(request.POST, request=request)
        if sent.is_valid():
            # Rendered, not redirected: the secret must not travel in a URL or the session.
            data = sent.cleaned_data
            key, secret = create_key_once(request.user, data["name"], data["form_token"])
        else:
            if "form_token" in sent.errors:
                messages.error(request, STALE_FORM)
            if "name" in sent.errors or "password" in sent.errors:
                form = _refused(sent)
    context = {
        "form": form,
        "secret": secret,
        "sent_again": key if key and not secret else None,
        "keys": ApiKey.objects.for_user(request.user),
    }
    response = render(request, "account/keys.html", context)
    response["Cache-Control"] = "no-store"  # the page may hold a secret
    return response


@login_required
@require_http_methods(["GET", "POST"])
def api_key_revoke(request: HttpRequest, key_id: UUID) -> HttpResponse:
    """GET asks to confirm (programs using the key stop at once); POST revokes."""
    key = get_for_user(ApiKey, request.user, key_id)
    if request.method == "GET" and key.revoked_at is None:
        return render(request, "account/key_revoke.html", {"key": key})
    if key.revoked_at is None:
        revoke_key(key)
        messages.success(request, f"Revoked {key}.")
    return redirect("api-keys-page")


@never_cache  # as the conversation pages (views.py)
@login_required
def usage(request: HttpRequest) -> HttpResponse:
    context = {"usage": usage_of(request.user), "days": USAGE_DAYS}
    return render(request, "account/usage.html", context)
