"""ASGI entry point: daphne serves `chatsite.asgi:application`."""

import os

from django.conf import settings
from django.core.asgi import get_asgi_application

from chatsite.request_threads import RequestThreads

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
# Requests borrow a kept thread for their sync work instead of starting one each.
application = RequestThreads(get_asgi_application(), settings.CHATSITE_REQUEST_THREADS)

# A process that starts owns no running reply: any reply a dead process left "generating"
# is marked interrupted now, before anyone can look at it.
from conversations.recovery import recover_at_startup  # noqa: E402

recover_at_startup()
