"""Django's middleware runs on the event loop (chatsite/middleware.py): security headers,
CSRF checks, sessions and flash messages must behave exactly as Django's own classes do."""

import httpx
from django.views.defaults import server_error

from conversations.models import ApiKey
from tests.client import csrf_secret, form_login, is_logged_in, key_form_token_on
from tests.conftest import session_for
from tests.stub import openai_stream


def assert_security_headers(response: httpx.Response) -> None:
    assert response.headers["x-frame-options"] == "DENY", response.url
    assert response.headers["x-content-type-options"] == "nosniff", response.url
    assert response.headers["referrer-policy"] == "same-origin", response.url
    assert "default-src 'self'" in response.headers["content-security-policy"], response.url


def test_pages_api_answers_and_streams_carry_the_security_headers(server, stub, alice_client):
    stub.queue(openai_stream(["Hi"]))
    assert_security_headers(alice_client.http.get("/accounts/login/"))
    assert_security_headers(alice_client.http.get("/api/models/"))
    conversation = alice_client.new_conversation()
    posted = alice_client.send(conversation["id"], "Hello")
    assert posted.status_code == 201, posted.text
    assert_security_headers(posted)
    with alice_client.http.stream("GET", posted.json()["stream_url"]) as stream:
        assert stream.status_code == 200
        assert_security_headers(stream)
        stream.read()


def test_a_form_post_without_its_csrf_token_is_refused(server, alice):
    with httpx.Client(base_url=server.url, cookies={"csrftoken": csrf_secret()}) as http:
        response = http.post(
            "/accounts/login/", data={"username": "alice", "password": "alice-password"}
        )
    assert response.status_code == 403
    assert "sessionid" not in response.cookies
    # chatsite's page, in words a person reads, not Django's technical one.
    assert "<h1>Please try again</h1>" in response.text and "Nothing was changed" in response.text


def test_a_signed_in_form_post_without_its_csrf_token_gets_the_page_too(server, alice):
    # A page opened before the last login elsewhere: signed in, with a stale token. The page
    # is drawn where the check runs, on the event loop: it must not load the user.
    cookies = {"sessionid": session_for(alice), "csrftoken": csrf_secret()}
    with httpx.Client(base_url=server.url, cookies=cookies) as http:
        response = http.post("/c/new/", data={"csrfmiddlewaretoken": csrf_secret()})
    assert response.status_code == 403
    assert "<h1>Please try again</h1>" in response.text


def test_a_server_error_gets_chatsites_page(rf):
    # Django's own view for an unhandled error, as the handler calls it: no request context.
    page = server_error(rf.get("/")).content.decode()
    assert "<h1>Something went wrong</h1>" in page and 'href="/"' in page


def test_an_api_post_without_the_csrf_header_is_refused(server, alice):
    cookies = {"sessionid": session_for(alice), "csrftoken": csrf_secret()}
    with httpx.Client(base_url=server.url, cookies=cookies) as http:
        response = http.post("/api/conversations/", json={})
    assert response.status_code == 403
    assert response.json()["error"]["code"]


def test_logging_in_through_the_form_saves_a_session_that_works(server, alice):
    assert is_logged_in(server.url, form_login(server.url, "alice"))


def test_a_flash_message_is_shown_once_after_revoking_an_api_key(server, alice):
    token = csrf_secret()
    cookies = {"sessionid": session_for(alice), "csrftoken": token}
    with httpx.Client(base_url=server.url, cookies=cookies) as http:
        form_token = key_form_token_on(http.get("/settings/keys/").text)
        created = http.post(
            "/settings/keys/",
            data={
                "name": "laptop",
                "form_token": form_token,
                "password": "alice-password",
                "csrfmiddlewaretoken": token,
            },
        )
        assert created.status_code == 200, created.text
        key = ApiKey.objects.get(user=alice)
        revoked = http.post(f"/settings/keys/{key.pk}/revoke/", data={"csrfmiddlewaretoken": token})
        assert revoked.status_code == 302, revoked.text
        assert "Revoked laptop" in http.get("/settings/keys/").text
        assert "Revoked laptop" not in http.get("/settings/keys/").text
