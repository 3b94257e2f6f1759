"""Small typed readers of environment variables for settings.py.

Each raises ImproperlyConfigured on a bad value, so a typo fails at start-up, not mid-request.
"""

import os
from collections.abc import Callable
from urllib.parse import urlsplit

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
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}")
    return number


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_url(name: str, default: str = "") -> str:
    """An http(s) URL with a host, or empty: a provider's base URL."""
    value = env_str(name, default)
    parts = urlsplit(value)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # not a number, or past 65535
        port_ok = False
    if value and (parts.scheme not in ("http", "https") or not parts.hostname or not port_ok):
        raise ImproperlyConfigured(
            f"{name} must be an http:// or https:// URL with a host, not {value!r}"
        )
    return value
