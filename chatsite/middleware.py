"""Django's standard middleware, with its hooks run on the event loop instead of in threads.

Under ASGI, Django's MiddlewareMixin runs every process_request and process_response
through sync_to_async: with this stack about sixteen thread hops per request, most of the
time a user waits for the first token. The hooks below only read headers and set
attributes, so they run inline. The two steps that can reach the database (saving a
changed session, storing flash messages) still run in a thread, and only when they have
something to write. Under WSGI (sync mode) every class behaves exactly like Django's.
"""

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponsePermanentRedirect
from django.middleware import clickjacking, common, csp, csrf, security
from django.utils.http import escape_leading_slashes

from chatsite.sessions import SessionCacheUnavailable


class InlineHooks:
    """Run a MiddlewareMixin's hooks on the event loop: for hooks that do no I/O."""

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response = None
        if hasattr(self, "process_request"):
            response = self.process_request(request)
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            response = await self.finish_response(request, response)
        return response

    async def finish_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        return self.process_response(request, response)


class SecurityMiddleware(InlineHooks, security.SecurityMiddleware):
    pass


class CommonMiddleware(InlineHooks, common.CommonMiddleware):
    """A write to a path without its trailing slash (POST /api/conversations) is sent on with
    a 308, which keeps its method and body: Django's 301 has clients repeat a POST as a GET
    (a list, "200 OK", nothing created), and with DEBUG on it is a 500."""

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if (
            response.status_code == 404
            and request.method not in ("GET", "HEAD")
            and self.should_redirect_with_slash(request)
        ):
            path = escape_leading_slashes(request.get_full_path(force_append_slash=True))
            response = HttpResponsePermanentRedirect(path, preserve_request=True)
        return super().process_response(request, response)


class AuthenticationMiddleware(InlineHooks, auth.AuthenticationMiddleware):
    """request.user and request.auser() stay lazy: the session is read when they are used."""


class XFrameOptionsMiddleware(InlineHooks, clickjacking.XFrameOptionsMiddleware):
    pass


class ContentSecurityPolicyMiddleware(InlineHooks, csp.ContentSecurityPolicyMiddleware):
    pass


class CsrfViewMiddleware(InlineHooks, csrf.CsrfViewMiddleware):
    """The token lives in a cookie (CSRF_USE_SESSIONS is off), so checking it reads only the
    request: its cookies, headers and the body Django has already received."""

    async def process_view(
        self, request: HttpRequest, callback: object, callback_args: tuple, callback_kwargs: dict
    ) -> HttpResponseBase | None:
        return super().process_view(request, callback, callback_args, callback_kwargs)


class SessionMiddleware(InlineHooks, sessions.SessionMiddleware):
    """The session is loaded lazily by whoever reads it; saving it writes to the database.

    A view that must end a session while its cache is down (logging out or in, a password
    change; chatsite/sessions.py says why it must wait) answers 503 with what to do."""

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponseBase | None:
        if not isinstance(exception, SessionCacheUnavailable):
            return None
        response = HttpResponse(exception.message, status=503, content_type="text/plain")
        response["Retry-After"] = "5"
        return response

    async def finish_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        session = getattr(request, "session", None)
        if session is not None and (session.modified or settings.SESSION_SAVE_EVERY_REQUEST):
            return await sync_to_async(self.process_response)(request, response)
        return self.process_response(request, response)


class MessageMiddleware(InlineHooks, messages.MessageMiddleware):
    """Messages that were read or added are stored, possibly in the session: in a thread."""

    async def finish_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        storage = getattr(request, "_messages", None)
        if storage is not None and (storage.used or storage.added_new):
            return await sync_to_async(self.process_response)(request, response)
        return self.process_response(request, response)
