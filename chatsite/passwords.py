"""Changing one's password, and creating an API key, ask for the current one. A wrong one
counts as a failed login (django-axes, LOGIN_FAILURE_LIMIT), so a session left open or stolen
cannot be used to try passwords without limit: Django's form checks it with check_password,
which nothing counts."""

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off, get_failure_limit
from django.conf import settings
from django.contrib.admin.forms import AdminPasswordChangeForm
from django.contrib.auth import authenticate, forms
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
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


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """axes' answer to a try while locked out (AXES_LOCKOUT_CALLABLE): the API's JSON error
    under /api/, where programs read it, and the site's page elsewhere."""
    cool_off = get_cool_off(request)
    minutes = round(cool_off.total_seconds() / 60)
    if request.path.startswith("/api/"):
        message = f"Too many wrong passwords: try again in {minutes} minutes."
        response = JsonResponse({"error": {"code": "locked_out", "message": message}}, status=429)
        response["Retry-After"] = str(round(cool_off.total_seconds()))
        return response
    context = {"failure_limit": get_failure_limit(request, credentials), "minutes": minutes}
    return render(request, settings.AXES_LOCKOUT_TEMPLATE, context, status=429)
