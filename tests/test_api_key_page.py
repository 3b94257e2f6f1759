"""The API key settings page: a key created once per form (its secret shown once), revoking
asked first, and nothing of one user's keys for another."""

import re

import httpx

from conversations.models import ApiKey
from tests.client import ChatClient, key_form_token_on, new_key


def key_form_token(client: ChatClient) -> str:
    """The settings page's create form, as drawn: its hidden token."""
    page = client.http.get("/settings/keys/")
    assert page.status_code == 200
    return key_form_token_on(page.text)


def password_of(client: ChatClient) -> dict[str, str]:
    """The form's password field, filled in as its user would."""
    return {"password": client.password}


def create_on_page(client: ChatClient, name: str, form_token: str) -> httpx.Response:
    """The settings page's create form sent as its user fills it in, password included."""
    data = {"name": name, "form_token": form_token, **password_of(client)}
    return client.http.post("/settings/keys/", data=data)


def secret_on(page) -> str | None:
    found = re.search(r'id="new-key">(cs_[A-Za-z0-9_-]+)<', page.text)
    return found and found.group(1)


def test_settings_page_creates_a_key_once_and_revokes_it(server, alice_client, key_client):
    assert "No keys yet" in alice_client.http.get("/settings/keys/").text

    created = create_on_page(alice_client, "<b>cli</b>", key_form_token(alice_client))
    assert created.status_code == 200
    assert created.headers["Cache-Control"] == "no-store"
    secret = secret_on(created)
    assert "&lt;b&gt;cli&lt;/b&gt;" in created.text and "<b>cli</b>" not in created.text
    assert key_client(secret).http.get("/api/conversations/").status_code == 200

    again = alice_client.http.get("/settings/keys/")
    assert secret not in again.text and f"cs_…{secret[-4:]}" in again.text
    key = ApiKey.objects.get()
    asked = alice_client.http.get(f"/settings/keys/{key.id}/revoke/")
    assert asked.status_code == 200 and "Revoke the key" in asked.text
    assert key_client(secret).http.get("/api/conversations/").status_code == 200  # only asked

    revoked = alice_client.http.post(f"/settings/keys/{key.id}/revoke/")
    assert revoked.status_code == 302
    assert key_client(secret).http.get("/api/conversations/").status_code == 401
    assert "revoked" in alice_client.http.get("/settings/keys/").text


def test_the_key_form_sent_again_creates_no_second_key(server, alice_client):
    token = key_form_token(alice_client)
    first = create_on_page(alice_client, "laptop", token)
    secret = secret_on(first)

    reloaded = create_on_page(alice_client, "laptop", token)
    assert reloaded.status_code == 200
    assert ApiKey.objects.count() == 1
    assert secret_on(reloaded) is None and secret not in reloaded.text
    assert f"already created the key “laptop …{secret[-4:]}”" in reloaded.text

    # Each drawing of the form is a new one: the next key is created.
    new_token = key_form_token_on(reloaded.text)
    assert new_token != token
    create_on_page(alice_client, "laptop", new_token)
    assert ApiKey.objects.count() == 2


def test_a_key_form_without_its_token_creates_nothing(server, alice_client):
    for token in ({}, {"form_token": "not-a-uuid"}):
        page = alice_client.http.post(
            "/settings/keys/", data={"name": "cli", **token, **password_of(alice_client)}
        )
        assert page.status_code == 200
        assert "The form was out of date, so no key was created" in page.text
        assert secret_on(page) is None
    assert not ApiKey.objects.exists()


def test_a_key_form_with_a_bad_name_keeps_its_token_and_creates_nothing(server, alice_client):
    token = key_form_token(alice_client)
    page = create_on_page(alice_client, "x" * 101, token)
    assert page.status_code == 200 and "at most 100 characters" in page.text
    assert f'value="{token}"' in page.text
    assert not ApiKey.objects.exists()


def test_a_key_form_with_a_bad_name_and_token_gets_a_new_token_and_keeps_the_name(
    server, alice_client
):
    form = {"name": "x" * 101, "form_token": "not-a-uuid"}
    page = alice_client.http.post("/settings/keys/", data=form)
    assert "at most 100 characters" in page.text and "The form was out of date" in page.text
    assert f'value="{"x" * 101}"' in page.text
    token = key_form_token_on(page.text)
    fixed = create_on_page(alice_client, "cli", token)
    assert secret_on(fixed) and ApiKey.objects.get().name == "cli"


def test_another_users_form_token_does_not_hand_over_their_key(
    server, alice_client, charlie_client
):
    token = key_form_token(alice_client)
    create_on_page(alice_client, "mine", token)
    page = create_on_page(charlie_client, "charlie-key", token)
    assert "mine" not in page.text and secret_on(page)
    assert ApiKey.objects.filter(form_token=token).count() == 2

    again = create_on_page(alice_client, "mine", token)
    assert "already created the key “mine …" in again.text and "charlie-key" not in again.text


def test_settings_page_needs_login_and_keeps_keys_private(
    server, client_for, alice_client, charlie_client
):
    assert client_for(None).http.get("/settings/keys/").status_code == 302
    new_key(alice_client)
    key = ApiKey.objects.get()
    assert f"…{key.last_four}" not in charlie_client.http.get("/settings/keys/").text
    assert charlie_client.http.get(f"/settings/keys/{key.id}/revoke/").status_code == 404
    assert charlie_client.http.post(f"/settings/keys/{key.id}/revoke/").status_code == 404
    assert ApiKey.objects.get().revoked_at is None


def test_creating_a_key_on_the_page_asks_for_the_password(server, alice_client):
    # A session alone (left open, or stolen) must not mint a key that outlives it.
    token = key_form_token(alice_client)
    for password in ({}, {"password": "not-it"}):
        page = alice_client.http.post(
            "/settings/keys/", data={"name": "cli", "form_token": token, **password}
        )
        assert page.status_code == 200 and secret_on(page) is None
        assert f'value="{token}"' in page.text  # nothing was created with it
        assert "not-it" not in page.text
    assert "Your password was not correct, so no key was created." in page.text
    assert not ApiKey.objects.exists()

    right = create_on_page(alice_client, "cli", token)
    assert secret_on(right) and ApiKey.objects.get().name == "cli"


def test_guessing_the_password_on_the_key_page_is_locked_out_as_logins_are(
    server, alice_client, settings
):
    token = key_form_token(alice_client)
    form = {"name": "cli", "form_token": token}
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        guess = alice_client.http.post("/settings/keys/", data={**form, "password": "wrong"})
        assert guess.status_code == 200
    last = alice_client.http.post("/settings/keys/", data={**form, "password": "wrong"})
    assert last.status_code == 429 and "Too many failed logins" in last.text
    minutes = settings.AXES_COOLOFF_TIME.seconds // 60
    assert f"Try again in {minutes} minutes" in last.text
    right = alice_client.http.post("/settings/keys/", data={**form, **password_of(alice_client)})
    assert right.status_code == 429 and secret_on(right) is None
    assert not ApiKey.objects.exists()
