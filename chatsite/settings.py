"""chatsite settings: everything comes from environment variables with safe defaults.

Every variable is listed in the README's Configuration section. The small typed helpers of
chatsite/env.py raise ImproperlyConfigured on a bad value, so a typo fails at start-up, not
mid-request.
"""

import logging
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from chatsite.databases import database_settings
from chatsite.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_redis_url,
    env_str,
    env_time_zone,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent


def read_secret_key() -> str:
    """SECRET_KEY from the environment, else the local file `./dev` generates on first run."""
    if key := env_str("SECRET_KEY"):
        return key
    key_file = Path(env_str("SECRET_KEY_FILE", str(BASE_DIR / ".secret_key")))
    if key_file.exists():
        return key_file.read_text().strip()
    if DEBUG:
        return "django-insecure-local-debug-only"
    raise ImproperlyConfigured(
        "SECRET_KEY is required when DEBUG is off: set SECRET_KEY, or run `./dev serve`, "
        "which generates one for local use in .secret_key"
    )


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = read_secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "chatsite.admin_site.ChatsiteAdminConfig",  # Django's admin (admin_site.py says what differs)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",  # thousands separators on the usage page
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from this site
    "conversations",
    "axes",  # failed logins, and the lockout after too many (below)
]

# Every middleware here is async-capable: a sync one would pin a thread for a whole stream.
# Django's own, with its hooks run on the event loop (chatsite/middleware.py says why).
# No GZipMiddleware: it buffers event streams.
MIDDLEWARE = [
    "chatsite.middleware.SecurityMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",
    "chatsite.middleware.SessionMiddleware",
    "chatsite.middleware.CommonMiddleware",
    "chatsite.middleware.CsrfViewMiddleware",
    "chatsite.middleware.AuthenticationMiddleware",
    "chatsite.middleware.MessageMiddleware",
    "chatsite.middleware.XFrameOptionsMiddleware",
    "chatsite.middleware.ContentSecurityPolicyMiddleware",
    "axes.middleware.AxesMiddleware",  # a locked-out login's answer; last, as axes asks
]

ROOT_URLCONF = "chatsite.urls"
ASGI_APPLICATION = "chatsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
            ],
        },
    },
]


DATABASES = {"default": database_settings(BASE_DIR)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_time_zone("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "servestatic.storage.CompressedManifestStaticFilesStorage"},
}

# Django's debug page hides settings named like KEY or PASSWORD; a URL carries a password too.
DEFAULT_EXCEPTION_REPORTER_FILTER = "chatsite.error_reports.SettingsFilter"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "conversation-list"
LOGOUT_REDIRECT_URL = "logged-out"

REDIS_URL = env_redis_url("REDIS_URL")
# Keys in Redis start with this, so several chatsite sites (or test runs) can share one server.
CHATSITE_REDIS_PREFIX = env_str("CHATSITE_REDIS_PREFIX", "chatsite")

# Every request reads its session: it is served from the cache (no query) and written
# through to the database (chatsite/sessions.py). The cache is Redis when several processes
# share REDIS_URL; without it, this process's memory, right for one process only, like the
# event log.
if REDIS_URL:
    CACHES = {
        "default": {
            # Django's, with one client per process, not one per request (chatsite/redis_cache.py).
            "BACKEND": "chatsite.redis_cache.ProcessRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CHATSITE_REDIS_PREFIX,
        }
    }
else:
    CACHES = {
        "default": {
            # LocMemCache, its async reads answered on the event loop (chatsite/caches.py).
            "BACKEND": "chatsite.caches.ProcessMemoryCache",
            "OPTIONS": {"MAX_ENTRIES": 10_000},  # sessions of a few hundred bytes each
        }
    }
SESSION_ENGINE = "chatsite.sessions"  # cached_db, safe when the cache fails
# Each signed-in user is read from that cache too, dropped from it when saved (chatsite/users.py).
# django-axes checks every password login first: LOGIN_FAILURE_LIMIT failures for one username
# from one address lock that pair out for LOGIN_LOCKOUT_MINUTES (the site's and the admin's
# login; `manage.py axes_reset_username NAME` unlocks). Guessing, not a user's typo, is stopped.
# The address is the connection's: behind a proxy, daphne's --proxy-headers makes it the client's.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "chatsite.users.CachedModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]  # a victim is not locked out by others
AXES_RESET_ON_SUCCESS = True
# A try while locked out does not start the lockout again: it ends when the page says.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_DISABLE_ACCESS_LOG = True  # failures only: no row (and no address kept) per login
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_LOCKOUT_CALLABLE = "chatsite.passwords.lockout_response"  # JSON under /api/
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "csrfmiddlewaretoken"]
SESSION_COOKIE_HTTPONLY = True
# Served over HTTPS only: plain-HTTP requests are redirected, and browsers are told to use
# nothing else for HSTS_SECONDS. Behind a proxy, daphne --proxy-headers reads X-Forwarded-Proto.
SECURE_SSL_REDIRECT = env_bool("HTTPS_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("HSTS_SECONDS", 0)
# A site served over HTTPS sends its cookies over nothing else, unless told otherwise: the
# first plain-HTTP request, before its redirect, would carry the session.
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", SECURE_SSL_REDIRECT or SECURE_HSTS_SECONDS > 0)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Model output is untrusted HTML: scripts only from this site, no remote images or frames.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}

REST_FRAMEWORK = {
    # A Bearer API key first: without credentials the answer is 401 with WWW-Authenticate.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "conversations.apikeys.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["conversations.api.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "conversations.api.errors.json_exception_handler",
    # JSON only, so ?format= is free for the export endpoints' own meaning.
    "URL_FORMAT_OVERRIDE": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "chatsite API",
    "DESCRIPTION": (
        "Conversations, messages, streamed replies, exports and API keys. Authenticate with "
        "`Authorization: Bearer <API key>` (create one at /settings/keys/) or a session cookie. "
        'Errors are JSON: `{"error": {"code", "message"}}`. The same API keys work with the '
        "OpenAI-compatible `POST /v1/chat/completions` and `GET /v1/models`, which follow "
        "OpenAI's API reference and are not described here."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "conversations.api.stream_schema.add_stream_endpoint",
    ],
}

LOG_LEVELS = tuple(logging.getLevelNamesMapping())  # DEBUG, INFO, WARNING (WARN), ...
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_choice("LOG_LEVEL", "INFO", LOG_LEVELS)},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}

# --- chatsite: providers -------------------------------------------------------------
# Each provider is available when its key (or, for OpenAI-compatible servers, its base URL)
# is set. With none set, the demo model answers. Keys are read here and never leave the server.
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_BASE_URL = env_url("OPENAI_BASE_URL")
OPENAI_MODELS = env_list("OPENAI_MODELS", "gpt-4o-mini")
DASHSCOPE_API_KEY = env_str("DASHSCOPE_API_KEY")
DASHSCOPE_BASE_URL = env_url("DASHSCOPE_BASE_URL", "https://dashscope.aliyuncs.com")
DASHSCOPE_MODELS = env_list("DASHSCOPE_MODELS", "qwen-plus")
DASHSCOPE_NON_INCREMENTAL_MODELS = env_list("DASHSCOPE_NON_INCREMENTAL_MODELS")
ZHIPUAI_API_KEY = env_str("ZHIPUAI_API_KEY")
ZHIPUAI_BASE_URL = env_url("ZHIPUAI_BASE_URL", "https://open.bigmodel.cn/api/paas/v4")
ZHIPUAI_MODELS = env_list("ZHIPUAI_MODELS", "glm-4-flash")
ANTHROPIC_API_KEY = env_str("ANTHROPIC_API_KEY")
ANTHROPIC_BASE_URL = env_url("ANTHROPIC_BASE_URL", "https://api.anthropic.com")
ANTHROPIC_MODELS = env_list("ANTHROPIC_MODELS", "claude-sonnet-4-5")
ANTHROPIC_MAX_TOKENS = env_int("ANTHROPIC_MAX_TOKENS", 4096, minimum=1)
CHATSITE_DEMO = env_bool("CHATSITE_DEMO", False)
CHATSITE_DEMO_TOKENS_PER_SECOND = env_float("CHATSITE_DEMO_TOKENS_PER_SECOND", 30.0, minimum=0)
CHATSITE_SYSTEM_PROMPT = env_str("CHATSITE_SYSTEM_PROMPT")

PROVIDER_CONNECT_TIMEOUT = env_float("PROVIDER_CONNECT_TIMEOUT", 10.0, minimum=0.1)
# Reasoning models can think for minutes before the first token: httpx's 5 s is far too short.
PROVIDER_READ_TIMEOUT = env_float("PROVIDER_READ_TIMEOUT", 300.0, minimum=0.1)
PROVIDER_MAX_CONNECTIONS = env_int("PROVIDER_MAX_CONNECTIONS", 200, minimum=1)

# --- chatsite: replies and streams ---------------------------------------------------
CHATSITE_MAX_MESSAGE_CHARS = env_int("CHATSITE_MAX_MESSAGE_CHARS", 32_000, minimum=1)
CHATSITE_HEARTBEAT_SECONDS = env_float("CHATSITE_HEARTBEAT_SECONDS", 15.0, minimum=0.01)
# Threads lent to requests' sync code at once (chatsite/request_threads.py); more calls wait.
# A few: more only share the interpreter with each other and with the event loop (bench/).
# At least two: writers get all but one, so reads go on while they wait for a locked database.
CHATSITE_REQUEST_THREADS = env_int("CHATSITE_REQUEST_THREADS", 4, minimum=2)
CHATSITE_STREAM_MAX_SECONDS = env_float("CHATSITE_STREAM_MAX_SECONDS", 300.0, minimum=0.01)
# A reply still generating after this long is stopped: a model caught repeating itself (local
# ones may have no length limit) would otherwise run, and hold its conversation, for good.
CHATSITE_REPLY_MAX_SECONDS = env_float("CHATSITE_REPLY_MAX_SECONDS", 1800.0, minimum=0.01)
CHATSITE_CHECKPOINT_SECONDS = env_float("CHATSITE_CHECKPOINT_SECONDS", 1.0, minimum=0.01)
# A reply is saved as streaming this long after its first token (at the latest with the next
# checkpoint): the first tokens of that time share one write, and a reply done by then needs none.
CHATSITE_FIRST_TOKEN_SAVE_SECONDS = env_float("CHATSITE_FIRST_TOKEN_SAVE_SECONDS", 0.2, minimum=0)
CHATSITE_RETRY_ATTEMPTS = env_int("CHATSITE_RETRY_ATTEMPTS", 3, minimum=1)
CHATSITE_RETRY_BACKOFF_SECONDS = env_float("CHATSITE_RETRY_BACKOFF_SECONDS", 0.5, minimum=0)
CHATSITE_RETRY_MAX_SECONDS = env_float("CHATSITE_RETRY_MAX_SECONDS", 20.0, minimum=0)
# A finished reply's events stay in memory this long for late reconnects, then the stream
# is served from the database.
CHATSITE_EVENT_RETENTION_SECONDS = env_float("CHATSITE_EVENT_RETENTION_SECONDS", 60.0, minimum=0)
# Models (as `provider:name`) that are fetched in one request instead of streamed.
CHATSITE_NON_STREAMING_MODELS = env_list("CHATSITE_NON_STREAMING_MODELS")
# The most Redis connections each of a process's event log and cache-read clients opens (the
# cache's sync client: one per request thread at most). Open streams hold none (one
# reader serves them all); short commands (a reply's start and end, stop requests, a stream's
# session read) take one each briefly, and redis-py refuses a command past the cap instead
# of waiting, so it is set well above.
CHATSITE_REDIS_MAX_CONNECTIONS = env_int("CHATSITE_REDIS_MAX_CONNECTIONS", 5000, minimum=2)

# --- chatsite: budgets and API keys ---------------------------------------------------
# Site-wide limits per user (0: none); each user's own limits can be set in admin.
CHATSITE_TOKENS_PER_DAY = env_int("CHATSITE_TOKENS_PER_DAY", 0)
CHATSITE_REQUESTS_PER_MINUTE = env_int("CHATSITE_REQUESTS_PER_MINUTE", 0)
# An open stream authenticated by an API key re-checks the key this often (seconds).
CHATSITE_API_KEY_RECHECK_SECONDS = env_float("CHATSITE_API_KEY_RECHECK_SECONDS", 5.0, minimum=0.05)
# An open stream followed with a session re-checks it (logout, deactivation) this often.
CHATSITE_SESSION_RECHECK_SECONDS = env_float("CHATSITE_SESSION_RECHECK_SECONDS", 5.0, minimum=0.05)
