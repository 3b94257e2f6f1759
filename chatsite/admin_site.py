"""Django's admin site, with its password change in one transaction.

Changing one's own password cycles the session key; while the session cache is down that
is refused (503, chatsite/sessions.py), and the new password must then not be kept either.
"""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.db import transaction
from django.http import HttpRequest, HttpResponse


class AdminSite(admin.AdminSite):
    def password_change(
        self, request: HttpRequest, extra_context: dict | None = None
    ) -> HttpResponse:
        with transaction.atomic():  # the password and the session change together or not at all
            return super().password_change(request, extra_context)


class ChatsiteAdminConfig(AdminConfig):
    default_site = "chatsite.admin_site.AdminSite"
