"""Changing one's password, and creating an API key, ask for the current one. A wrong one
counts as a failed login (django-axes, LOGIN_FAILURE_LIMIT), so a session left open or stolen
cannot be used to try passwords without limit: Django's form checks it with check_password,
which nothing counts."""

import math
from datetime import timedelta

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off, get_failure_limit
from django.conf import settings
from django.contrib.admin.forms import AdminPasswordChangeForm
from django.contrib.auth import authenticate, forms
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_variables


@sensitive_variables("password")
def password_confirmed(request: HttpRequest, username: str, password: str) -> bool:
    """Whether `password` is `username`'s, checked as a login is (without logging in)."""
    # Over the limit, axes refuses even the right one and its middleware answers 429.
    if authenticate(request, username=username, password=password) is None:
        return False
    # As a login does: the wrong ones before it stop counting towards a lockout.
    address = getattr(request, "axes_ip_address", None)
    AxesProxyHandler.reset_attempts(ip_address=address, username=username)
    return True


class CountedOldPassword:
    """For a PasswordChangeForm: the current password checked as a login is."""

    def __init__(self, *args: object, request: HttpRequest, **kwargs: object) -> None:
        self.request = request
        super().__init__(*args, **kwargs)

    @method_decorator(sensitive_variables("old_password"))  # as Django's own
    def clean_old_password(self) -> str:
        old_password = self.cleaned_data["old_password"]
        if not password_confirmed(self.request, self.user.get_username(), old_password):
            raise ValidationError(
                self.error_messages["password_incorrect"], code="password_incorrect"
            )
        return old_password


class SitePasswordChangeForm(CountedOldPassword, forms.PasswordChangeForm):
    pass


class AdminSitePasswordChangeForm(CountedOldPassword, AdminPasswordChangeForm):
    pass


class PasswordChangeView(auth_views.PasswordChangeView):
    form_class = SitePasswordChangeForm

    def get_form_kwargs(self) -> dict:
        return {**super().get_form_kwargs(), "request": self.request}


def lockout_left(request: HttpRequest, credentials: dict | None) -> timedelta:
    """How long this lockout still lasts. axes counts the failures of attempt rows whose
    latest failure is within the cool-off; it ends when those left drop below the limit."""
    cool_off = get_cool_off(request)
    limit = get_failure_limit(request, credentials)
    now = getattr(request, "axes_attempt_time", None) or timezone.now()
    left = timedelta(0)
    attempts_lists = AxesProxyHandler.get_implementation().get_user_attempts(request, credentials)
    for attempts in attempts_lists:  # one per lockout parameter set; the longest holds
        rows = attempts.values_list("failures_since_start", "attempt_time")
        counted = 0
        for failures, latest in rows.order_by("-attempt_time"):
            counted += failures
            if counted >= limit:  # this row's expiry brings the count below the limit
                left = max(left, latest + cool_off - now)
                break
    # Nothing counted: unlocked in the meantime, so the next try decides; say the most.
    return left if left > timedelta(0) else cool_off


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None = None
) -> HttpResponse:
    """axes' answer to a try while locked out (AXES_LOCKOUT_CALLABLE): the API's JSON error
    under /api/, where programs read it, and the site's page elsewhere."""
    # axes' async middleware passes the credentials where the response belongs (8.3.1).
    credentials = credentials or getattr(request, "axes_credentials", None)
    seconds = math.ceil(lockout_left(request, credentials).total_seconds())
    minutes = math.ceil(seconds / 60)
    if request.path.startswith("/api/"):
        unit = "minute" if minutes == 1 else "minutes"
        message = f"Too many wrong passwords: try again in {minutes} {unit}."
        response = JsonResponse({"error": {"code": "locked_out", "message": message}}, status=429)
        response["Retry-After"] = str(seconds)
        return response
    context = {"failure_limit": get_failure_limit(request, credentials), "minutes": minutes}
    return render(request, settings.AXES_LOCKOUT_TEMPLATE, context, status=429)
