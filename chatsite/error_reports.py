"""What Django's error reports (the DEBUG page, the admins' e-mails) may show of the settings."""

import re

from django.views.debug import SafeExceptionReporterFilter


class SettingsFilter(SafeExceptionReporterFilter):
    """Django's filter, also hiding the settings that hold a URL, whose password may be part
    of it (REDIS_URL, the cache's LOCATION)."""

    hidden_settings = re.compile(
        SafeExceptionReporterFilter.hidden_settings.pattern + "|_URL$|^LOCATION$", flags=re.I
    )
