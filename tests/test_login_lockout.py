"""Password guessing is stopped: after LOGIN_FAILURE_LIMIT failed logins for one username from
one address, that pair is refused for a while (429 and a page saying so), on the site's login
and the admin's; other users, and the same user once the count is reset, log in as usual."""

from datetime import timedelta

import httpx
import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import F

from tests.client import csrf_secret

LIMIT = settings.AXES_FAILURE_LIMIT


def log_in(
    server, username: str, password: str, path: str = "/accounts/login/", browser: str = "pytest"
):
    """A login form posted as a browser does; the response (not followed)."""
    token = csrf_secret()
    headers = {"User-Agent": browser}
    with httpx.Client(base_url=server.url, cookies={"csrftoken": token}, headers=headers) as http:
        data = {"username": username, "password": password, "csrfmiddlewaretoken": token}
        return http.post(path, data=data)


def fail(server, username: str, times: int, path: str = "/accounts/login/", **browser) -> None:
    for _ in range(times):
        response = log_in(server, username, "a wrong guess", path, **browser)
        assert response.status_code == 200  # the form again, saying they didn't match
        assert "didn't match" in response.text or "correct username" in response.text


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"], ids=["site", "admin"])
def test_too_many_wrong_passwords_lock_that_user_out_from_that_address(server, alice, bob, path):
    fail(server, "alice", LIMIT - 1, path)
    last_guess = log_in(server, "alice", "a wrong guess", path)
    refused = log_in(server, "alice", "alice-password", path)  # now even the right one
    for response in (last_guess, refused):
        assert response.status_code == 429
        assert "Too many failed logins" in response.text
        assert "sessionid" not in response.cookies
    # Another user from the same address is not held up by alice's lockout.
    assert log_in(server, "bob", "bob-password", path).status_code == 302


@pytest.mark.parametrize(("minutes_left", "words"), [(3, "3 minutes"), (1, "1 minute")])
def test_the_lockout_page_says_when_it_ends_not_the_whole_cool_off(
    server, alice, minutes_left, words
):
    # axes keeps a row per browser. The older row's failures expire first, and with them the
    # count drops below the limit: the lockout ends then, though the newer row is younger.
    cool_off = settings.AXES_COOLOFF_TIME.seconds // 60
    fail(server, "alice", LIMIT - 1, browser="old laptop")
    earlier = timedelta(minutes=cool_off - minutes_left)
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - earlier)
    last_guess = log_in(server, "alice", "a wrong guess", browser="new phone")
    refused = log_in(server, "alice", "alice-password", browser="new phone")
    for response in (last_guess, refused):
        assert response.status_code == 429
        assert f"Try again in {words}, or ask" in response.text


def test_a_successful_login_resets_the_count(server, alice):
    fail(server, "alice", LIMIT - 1)
    assert log_in(server, "alice", "alice-password").status_code == 302
    fail(server, "alice", LIMIT - 1)
    assert log_in(server, "alice", "alice-password").status_code == 302


def test_failed_logins_are_recorded_without_the_password_or_csrf_token(server, alice):
    token = csrf_secret()
    with httpx.Client(base_url=server.url, cookies={"csrftoken": token}) as http:
        data = {"username": "alice", "password": "hunter2-guess", "csrfmiddlewaretoken": token}
        assert http.post("/accounts/login/", data=data).status_code == 200
    attempt = AccessAttempt.objects.get()
    assert (attempt.username, attempt.failures_since_start) == ("alice", 1)
    assert "hunter2-guess" not in attempt.post_data and token not in attempt.post_data
