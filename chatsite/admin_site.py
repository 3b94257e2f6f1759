"""Django's admin site, with its password change in one transaction, its current password
counted as a login (chatsite/passwords.py), and no autocomplete.

Changing one's own password cycles the session key; while the session cache is down that
is refused (503, chatsite/sessions.py), and the new password must then not be kept either.
"""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse


class AdminSite(admin.AdminSite):
    def autocomplete_view(self, request: HttpRequest) -> HttpResponse:
        # No list uses it, and it searches message text with no audit record (audit.py):
        # ?app_label=conversations&model_name=message&field_name=conversation&term=…
        raise Http404("No autocomplete here.")

    def password_change(
        self, request: HttpRequest, extra_context: dict | None = None
    ) -> HttpResponse:
        """Django's, with the current password checked as a login is (chatsite/passwords.py)."""
        # Here, as Django imports its own: forms need the apps loaded, this module does not.
        from chatsite.passwords import AdminSitePasswordChangeForm, PasswordChangeView

        view = PasswordChangeView.as_view(
            form_class=AdminSitePasswordChangeForm,
            success_url=reverse("admin:password_change_done", current_app=self.name),
            extra_context={**self.each_context(request), **(extra_context or {})},
            template_name=self.password_change_template or "registration/password_change_form.html",
        )
        request.current_app = self.name
        with transaction.atomic():  # the password and the session change together or not at all
            return view(request)


class ChatsiteAdminConfig(AdminConfig):
    default_site = "chatsite.admin_site.AdminSite"
