"""Changing one's password asks for the current one. A wrong one counts as a failed login
(django-axes, LOGIN_FAILURE_LIMIT), so a session left open or stolen cannot be used to try
passwords without limit: Django's form checks it with check_password, which nothing counts."""

from axes.handlers.proxy import AxesProxyHandler
from django.contrib.admin.forms import AdminPasswordChangeForm
from django.contrib.auth import authenticate, forms
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_variables


class CountedOldPassword:
    """For a PasswordChangeForm: the current password checked as a login is."""

    def __init__(self, *args: object, request: HttpRequest, **kwargs: object) -> None:
        self.request = request
        super().__init__(*args, **kwargs)

    @method_decorator(sensitive_variables("old_password"))  # as Django's own
    def clean_old_password(self) -> str:
        old_password = self.cleaned_data["old_password"]
        username = self.user.get_username()
        # Over the limit, axes refuses even the right one and its middleware answers 429.
        if authenticate(self.request, username=username, password=old_password) is None:
            raise ValidationError(
                self.error_messages["password_incorrect"], code="password_incorrect"
            )
        # As a login does: the wrong ones before it stop counting towards a lockout.
        address = getattr(self.request, "axes_ip_address", None)
        AxesProxyHandler.reset_attempts(ip_address=address, username=username)
        return old_password


class SitePasswordChangeForm(CountedOldPassword, forms.PasswordChangeForm):
    pass


class AdminSitePasswordChangeForm(CountedOldPassword, AdminPasswordChangeForm):
    pass


class PasswordChangeView(auth_views.PasswordChangeView):
    form_class = SitePasswordChangeForm

    def get_form_kwargs(self) -> dict:
        return {**super().get_form_kwargs(), "request": self.request}
