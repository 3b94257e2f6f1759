"""Small typed readers of environment variables for settings.py.

Each raises ImproperlyConfigured on a bad value, so a typo fails at start-up, not mid-request.
"""

import math
import os
import re
from collections.abc import Callable
from urllib.parse import SplitResult, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int, minimum: int = 0) -> int:
    return env_number(name, default, minimum, int, "a whole number")


def env_float(name: str, default: float, minimum: float = 0.0) -> float:
    return env_number(name, default, minimum, float, "a number")


def env_number[N: (int, float)](
    name: str, default: N, minimum: N, parse: Callable[[str], N], kind: str
) -> N:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = parse(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be {kind}, not {value!r}") from None
    if not math.isfinite(number):  # nan passes any comparison with the minimum
        raise ImproperlyConfigured(f"{name} must be a finite number, not {value!r}")
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}")
    return number


def env_list(name: str, default: str = "") -> list[str]:
    """Comma-separated; set but empty, the default (as the other helpers do)."""
    value = os.environ.get(name) or default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of `choices`, in any case (given as written in `choices`)."""
    value = os.environ.get(name) or default
    for choice in choices:
        if value.lower() == choice.lower():
            return choice
    raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}; not {value!r}")


def env_time_zone(name: str, default: str = "UTC") -> str:
    """An IANA time zone name, such as Europe/Berlin."""
    value = os.environ.get(name) or default
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        message = f"{name} must be a time zone name such as Europe/Berlin, not {value!r}"
        raise ImproperlyConfigured(message) from None
    return value


def env_redis_url(name: str) -> str:
    """A redis://, rediss:// (TLS) or unix:// URL, or empty."""
    value = env_str(name)
    parts = urlsplit(value)
    if value and not (
        (parts.scheme in ("redis", "rediss") and parts.hostname and port_ok(parts))
        or parts.scheme == "unix"
    ):
        raise ImproperlyConfigured(  # not repeating the value: it may hold a password
            f"{name} must be a redis://, rediss:// or unix:// URL with a host"
        )
    return value


def port_ok(parts: SplitResult) -> bool:
    try:
        return parts.port is None or parts.port > 0
    except ValueError:  # not a number, or past 65535
        return False


def env_url(name: str, default: str = "") -> str:
    """An http(s) URL with a host, or empty: a provider's base URL."""
    value = env_str(name, default)
    parts = urlsplit(value)
    usable = parts.scheme in ("http", "https") and parts.hostname and port_ok(parts)
    if value and not usable:
        # Shown without what may be a secret: everything up to the last @ but the scheme (a
        # user and password, whatever they hold, wherever a typo put the slashes), a query
        # (?key=...), a fragment.
        head, at, rest = value.rpartition("@")
        scheme = re.match(r"(?:[A-Za-z]+:?/+)?", head).group() if at else ""
        shown = scheme + re.split(r"[?#]", rest, maxsplit=1)[0]
        raise ImproperlyConfigured(
            f"{name} must be an http:// or https:// URL with a host, not {shown!r}"
        )
    return value
