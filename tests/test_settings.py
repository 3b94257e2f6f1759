"""Settings come from the environment; bad values and a missing SECRET_KEY fail start-up clearly."""

import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from chatsite.env import env_bool, env_float, env_int, env_list, env_url
from tests.servers import database_url


def test_typed_env_helpers_reject_bad_values(monkeypatch):
    monkeypatch.setenv("SOME_INT", "ten")
    with pytest.raises(ImproperlyConfigured, match="SOME_INT must be a whole number"):
        env_int("SOME_INT", 1)
    monkeypatch.setenv("SOME_BOOL", "maybe")
    with pytest.raises(ImproperlyConfigured, match="SOME_BOOL must be true or false"):
        env_bool("SOME_BOOL")
    monkeypatch.setenv("SOME_FLOAT", "-1")
    with pytest.raises(ImproperlyConfigured, match="at least 0"):
        env_float("SOME_FLOAT", 1.0, minimum=0)
    monkeypatch.setenv("SOME_LIST", " a, ,b ")
    assert env_list("SOME_LIST") == ["a", "b"]
    for url in ("api.deepseek.com/v1", "ftp://example.com/v1", "http://", "http://h:99999/v1"):
        monkeypatch.setenv("SOME_URL", url)
        with pytest.raises(ImproperlyConfigured, match="SOME_URL must be an http:// or https://"):
            env_url("SOME_URL")
    # A gateway's credentials in a mistyped URL are not repeated by its error.
    for typo, shown in [
        ("https://user:s3cret@gw:84x3/v1?key=k3y", "https://gw:84x3/v1"),
        ("http:/user:s3cret@gw/v1#k3y", "http:/gw/v1"),
        ("https//user:s3cret@gw/v1", "https//gw/v1"),
        ("user:s3cret@gw:8080/v1", "gw:8080/v1"),
        ("http://user:p?s3cret@gw:99999", "http://gw:99999"),
        ("https://user:pa/s3cret@gw:99999/v1", "https://gw:99999/v1"),
    ]:
        monkeypatch.setenv("SOME_URL", typo)
        with pytest.raises(ImproperlyConfigured, match="SOME_URL must be") as refused:
            env_url("SOME_URL")
        assert f"not {shown!r}" in str(refused.value)
        assert "s3cret" not in str(refused.value) and "k3y" not in str(refused.value)
    monkeypatch.setenv("SOME_URL", "http://127.0.0.1:11434/v1")
    assert env_url("SOME_URL") == "http://127.0.0.1:11434/v1"


def start_django(show: str = "settings.DEBUG", **env: str) -> subprocess.CompletedProcess:
    """Django set up in a new process with `env` alone; it prints `show`."""
    clean = {"PATH": "/usr/bin:/bin", "SECRET_KEY_FILE": "/nonexistent/secret", **env}
    code = f"import django; django.setup(); from django.conf import settings; print({show})"
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "DJANGO_SETTINGS_MODULE": "chatsite.settings"},
        cwd=django_settings.BASE_DIR, capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_secret_key_is_required_when_debug_is_off():
    result = start_django()
    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


def test_debug_is_off_unless_set_and_a_bad_value_names_the_variable():
    assert start_django(SECRET_KEY="x" * 50).stdout.strip() == "False"
    result = start_django(SECRET_KEY="x" * 50, CHATSITE_CHECKPOINT_SECONDS="soon")
    assert "CHATSITE_CHECKPOINT_SECONDS must be a number" in result.stderr


def test_one_request_thread_is_refused_as_it_would_leave_none_for_reads():
    # Writers get all threads but one (chatsite/request_threads.py); with one thread, writers
    # waiting out a locked SQLite database would hold up every page and stream read.
    result = start_django(SECRET_KEY="x" * 50, CHATSITE_REQUEST_THREADS="1")
    assert result.returncode != 0
    assert "CHATSITE_REQUEST_THREADS must be at least 2, not 1" in result.stderr
    assert start_django(SECRET_KEY="x" * 50, CHATSITE_REQUEST_THREADS="2").returncode == 0


@pytest.mark.parametrize(
    "name", ["OPENAI_BASE_URL", "DASHSCOPE_BASE_URL", "ZHIPUAI_BASE_URL", "ANTHROPIC_BASE_URL"]
)
def test_a_provider_base_url_without_http_stops_start_up(name):
    # A URL the HTTP client cannot use would otherwise fail every reply with chatsite's error.
    result = start_django(SECRET_KEY="x" * 50, **{name: "api.example.com/v1"})
    assert result.returncode != 0
    assert f"{name} must be an http:// or https:// URL with a host" in result.stderr


def test_sqlite_uses_wal_a_busy_timeout_and_kept_connections_postgres_none():
    database = django_settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        assert database["ENGINE"] == "chatsite.sqlite3"  # writers queue on a lock
        assert "journal_mode=WAL" in database["OPTIONS"]["init_command"]
        assert database["OPTIONS"]["timeout"] > 0
        assert database["CONN_MAX_AGE"] > 0  # kept with its request thread
    else:
        assert database["CONN_MAX_AGE"] == 0  # closed when its thread is given back


def test_no_gzip_and_only_async_capable_middleware():
    from django.utils.module_loading import import_string

    for path in django_settings.MIDDLEWARE:
        assert "GZip" not in path
        assert getattr(import_string(path), "async_capable", False), path


@pytest.mark.django_db(transaction=True)
def test_server_process_freezes_start_up_objects_and_collects_garbage_less_often():
    # A frozen object is in no generation: gc.get_objects() leaves it out.
    code = (
        "import gc, sys, chatsite.asgi; views = sys.modules.get('conversations.api.views');"
        "view = views and views.MessageCreate;"
        "frozen = view is not None and all(o is not view for o in gc.get_objects());"
        "print(*gc.get_threshold(), gc.get_freeze_count(), frozen)"
    )
    env = {**os.environ, "DATABASE_URL": database_url(), "SECRET_KEY": "x" * 50}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env, cwd=django_settings.BASE_DIR, capture_output=True, text=True, check=True,
    )  # fmt: skip
    young, *_, frozen, views_frozen = result.stdout.split()
    assert int(young) > 700  # Python's default
    assert int(frozen) > 10_000  # Django and chatsite's modules, loaded before the first request
    assert views_frozen == "True"  # the views too: the URLconf is loaded before the freeze


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PROVIDER_READ_TIMEOUT": "nan"}, "PROVIDER_READ_TIMEOUT must be a finite number"),
        ({"CHATSITE_HEARTBEAT_SECONDS": "inf"}, "CHATSITE_HEARTBEAT_SECONDS must be a finite"),
        ({"TIME_ZONE": "Mars/Olympus"}, "TIME_ZONE must be a time zone name"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL must be one of CRITICAL, FATAL, ERROR, WARN"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL must be a redis://, rediss:// or unix://"),
        ({"REDIS_URL": "redis://cache:6379x/0"}, "REDIS_URL must be a redis://, rediss://"),
        ({"DATABASE_URL": "mysqlish://db/x"}, "DATABASE_URL is not a database URL"),
    ],
    ids=["nan", "inf", "time_zone", "log_level", "redis_url", "redis_port", "database_url"],
)
def test_a_bad_value_stops_start_up_naming_its_variable(env, message):
    result = start_django(SECRET_KEY="x" * 50, **env)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr[-500:]


def test_an_empty_model_list_is_the_default_one_and_a_level_may_be_lowercase():
    show = "settings.OPENAI_MODELS, settings.LOGGING['root']['level']"
    for level, taken in (("warning", "WARNING"), ("warn", "WARN")):  # logging's own names
        env = {"SECRET_KEY": "x" * 50, "OPENAI_MODELS": "", "LOG_LEVEL": level}
        result = start_django(show, **env)
        assert result.stdout.split() == ["['gpt-4o-mini']", taken], result.stderr[-500:]


def test_error_reports_hide_urls_that_may_hold_a_password(settings):
    from django.views.debug import get_default_exception_reporter_filter

    settings.REDIS_URL = "redis://:hunter2@redis.example/0"
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": settings.REDIS_URL}}
    shown = str(get_default_exception_reporter_filter().get_safe_settings())
    assert "hunter2" not in shown
    assert "REDIS_URL" in shown  # named, its value hidden


def test_cookies_are_sent_over_https_only_once_the_site_is_served_over_https():
    show = "(settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE)"
    secret = "x" * 50
    assert start_django(show, SECRET_KEY=secret).stdout.strip() == "(False, False)"
    for https in ({"HTTPS_REDIRECT": "on"}, {"HSTS_SECONDS": "600"}):
        assert start_django(show, SECRET_KEY=secret, **https).stdout.strip() == "(True, True)"
    told = start_django(show, SECRET_KEY=secret, HTTPS_REDIRECT="on", SECURE_COOKIES="off")
    assert told.stdout.strip() == "(False, False)"
