"""Personal API keys: shown once, stored hashed, act as their owner, die at once when revoked."""

import contextlib
import hashlib
import uuid
from datetime import timedelta

from axes.models import AccessAttempt
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from conversations.apikeys import active_key_ids, create_key, revoke_key
from conversations.models import ApiKey, Conversation, Message
from tests.client import new_key, read_events, text_of
from tests.replies import send_held_reply
from tests.stub import Gate, Script, openai_chunk, openai_stream, sse

END = [openai_chunk(finish_reason="stop"), sse("[DONE]")]


def test_a_new_key_is_shown_once_and_only_its_hash_is_stored(server, alice_client, alice):
    created = new_key(alice_client)
    secret = created["key"]
    assert secret.startswith("cs_") and len(secret) > 40
    assert created["last_four"] == secret[-4:]

    stored = ApiKey.objects.get(pk=created["id"])
    assert stored.user == alice
    assert stored.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str([getattr(stored, f.attname) for f in ApiKey._meta.concrete_fields])

    listing = alice_client.http.get("/api/keys/")
    assert listing.status_code == 200
    assert secret not in listing.text
    [listed] = listing.json()["results"]
    assert listed == {**{k: v for k, v in created.items() if k != "key"}}
    assert "key" not in listed and listed["last_used_at"] is None


def test_a_key_acts_as_its_owner_and_its_messages_are_stored_and_counted(
    server, stub, alice_client, alice, key_client
):
    secret = new_key(alice_client)["key"]
    tool = key_client(secret)
    stub.queue(openai_stream(["From ", "a tool"], usage=(9, 4)))

    conversation = tool.new_conversation(title="Scripted")
    body = tool.send(conversation["id"], "Hello from a script").json()
    assert text_of(tool.events(body["stream_url"])) == "From a tool"
    reply = tool.wait_final(conversation["id"], body["assistant_message"]["id"])

    assert Conversation.objects.get(pk=conversation["id"]).owner == alice
    assert (reply["status"], reply["total_tokens"], reply["usage_source"]) == (
        "complete",
        13,
        "provider",
    )
    assert alice_client.conversation(conversation["id"])["messages"][0]["content"] == (
        "Hello from a script"
    )
    [listed] = alice_client.http.get("/api/keys/").json()["results"]
    assert listed["last_used_at"] is not None


def test_a_revoked_key_stops_working_at_once(server, alice_client, key_client):
    created = new_key(alice_client)
    tool = key_client(created["key"])
    assert tool.http.get("/api/conversations/").status_code == 200

    assert alice_client.http.delete(f"/api/keys/{created['id']}/").status_code == 204

    refused = tool.http.get("/api/conversations/")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert refused.json()["error"]["code"] == "invalid_api_key"
    assert created["key"] not in refused.text
    [listed] = alice_client.http.get("/api/keys/").json()["results"]
    assert listed["revoked_at"] is not None


def test_unknown_or_malformed_keys_get_401_without_echoing_them(server, key_client):
    for secret in ["cs_" + "x" * 43, "not-a-chatsite-key", "cs_"]:
        response = key_client(secret).http.get("/api/conversations/")
        assert response.status_code == 401, secret
        assert response.json()["error"]["code"] == "invalid_api_key"
        if len(secret) > 3:
            assert secret not in response.text


def test_a_key_cannot_create_keys_but_can_list_and_revoke(server, alice_client, key_client):
    created = new_key(alice_client)
    tool = key_client(created["key"])
    refused = tool.http.post("/api/keys/", json={"name": "minted by a key"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "session_required"
    assert ApiKey.objects.count() == 1
    assert [k["id"] for k in tool.http.get("/api/keys/").json()["results"]] == [created["id"]]
    assert tool.http.delete(f"/api/keys/{created['id']}/").status_code == 204
    assert tool.http.get("/api/keys/").status_code == 401


def test_other_users_keys_are_invisible_and_cannot_be_revoked(server, alice_client, charlie_client):
    alices = new_key(alice_client)
    charlies = new_key(charlie_client, "charlie's")
    assert [k["id"] for k in charlie_client.http.get("/api/keys/").json()["results"]] == [
        charlies["id"]
    ]
    assert charlie_client.http.delete(f"/api/keys/{alices['id']}/").status_code == 404
    assert charlie_client.http.delete(f"/api/keys/{uuid.uuid4()}/").status_code == 404
    assert ApiKey.objects.get(pk=alices["id"]).revoked_at is None


def test_fields_a_client_sends_for_a_key_are_ignored(server, alice_client, alice, charlie):
    forged = {
        "name": "mine",
        "id": str(uuid.uuid4()),
        "user": charlie.pk,
        "key_hash": "0" * 64,
        "last_four": "abcd",
        "revoked_at": "2020-01-01T00:00:00Z",
        "last_used_at": "2020-01-01T00:00:00Z",
        "key": "cs_chosen-by-the-client",
        "password": alice_client.password,
    }
    created = alice_client.http.post("/api/keys/", json=forged).json()
    stored = ApiKey.objects.get(pk=created["id"])
    assert str(stored.pk) != forged["id"]
    assert stored.user == alice
    assert stored.key_hash == hashlib.sha256(created["key"].encode()).hexdigest()
    assert created["key"] != forged["key"]
    assert (stored.revoked_at, stored.last_used_at, stored.name) == (None, None, "mine")


def test_revoking_a_key_ends_its_open_stream_but_not_the_reply(
    start_server, stub, alice, client_for, key_client
):
    server = start_server(CHATSITE_API_KEY_RECHECK_SECONDS="0.1")
    owner = client_for(alice, server.url)
    created = new_key(owner)
    tool = key_client(created["key"], server.url)
    gate = Gate()
    stub.queue(Script(steps=[openai_chunk("Hel"), gate, openai_chunk("lo"), *END]))
    conversation = tool.new_conversation()
    body = tool.send(conversation["id"], "Greet me").json()

    with tool.http.stream("GET", body["stream_url"]) as response:
        assert response.status_code == 200
        chunks = response.iter_bytes()
        events = read_events(chunks)
        first = next(events)
        assert (first.name, first.data["content"]) == ("delta", "Hel")
        gate.wait_reached()
        assert owner.http.delete(f"/api/keys/{created['id']}/").status_code == 204
        last = next(events)  # the stream idles at the gate until the key check ends it
        assert last.name == "error"
        assert last.data["error"]["code"] == "key_revoked"
        assert b"".join(chunks) == b""  # and then it closes

    refused = tool.http.get(body["stream_url"])
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")  # as every API view says
    gate.open()
    reply = owner.wait_final(conversation["id"], body["assistant_message"]["id"])
    assert (reply["status"], reply["content"]) == ("complete", "Hello")
    assert Message.objects.filter(conversation_id=conversation["id"]).count() == 2


def test_revoking_a_key_ends_only_the_streams_open_with_it(
    start_server, stub, alice, client_for, key_client
):
    server = start_server(CHATSITE_API_KEY_RECHECK_SECONDS="0.1")
    owner = client_for(alice, server.url)
    revoked, kept = new_key(owner, "revoked"), new_key(owner, "kept")
    gates = [Gate(), Gate(), Gate()]
    with contextlib.ExitStack() as open_streams:
        streams = []
        for secret, gate in zip((revoked["key"], revoked["key"], kept["key"]), gates, strict=True):
            stub.queue(Script(steps=[openai_chunk("Hel"), gate, openai_chunk("lo"), *END]))
            tool = key_client(secret, server.url)
            body = tool.send(tool.new_conversation()["id"], "Greet me").json()
            response = open_streams.enter_context(tool.http.stream("GET", body["stream_url"]))
            streams.append(events := read_events(response.iter_bytes()))
            assert next(events).data["content"] == "Hel"
            gate.wait_reached()  # in order: the stub answers the queued scripts one by one

        assert owner.http.delete(f"/api/keys/{revoked['id']}/").status_code == 204
        for events in streams[:2]:
            assert next(events).data["error"]["code"] == "key_revoked"
        gates[2].open()
        rest = list(streams[2])
        assert (text_of(rest), rest[-1].name) == ("lo", "done")


def test_one_query_tells_which_of_many_keys_are_still_active(alice, bob):
    keys = {
        name: create_key(user, name)[0]
        for name, user in [("a", alice), ("b", alice), ("c", bob), ("d", bob)]
    }
    revoke_key(keys["b"])
    bob.is_active = False
    bob.save()
    with CaptureQueriesContext(connection) as queries:
        active = active_key_ids([key.pk for key in keys.values()] + [uuid.uuid4()])
    assert active == {keys["a"].pk}
    assert len(queries.captured_queries) == 1


def test_a_session_stream_is_not_affected_by_key_checks(start_server, stub, alice, client_for):
    server = start_server(CHATSITE_API_KEY_RECHECK_SECONDS="0.1")
    owner = client_for(alice, server.url)
    stub.queue(Script(steps=[openai_chunk("Hel"), 0.3, openai_chunk("lo"), *END]))
    conversation = owner.new_conversation()
    body = owner.send(conversation["id"], "Greet me").json()
    events = owner.events(body["stream_url"])
    assert (text_of(events), events[-1].name) == ("Hello", "done")


def test_a_deactivated_users_key_stops_working(server, alice, key_client):
    _, secret = create_key(alice)
    tool = key_client(secret)
    assert tool.http.get("/api/conversations/").status_code == 200
    alice.is_active = False
    alice.save()  # as the admin's user page does
    refused = tool.http.get("/api/conversations/")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"


def test_a_bad_key_is_refused_on_a_running_reply_even_with_the_owners_session(
    server, stub, alice_client
):
    # A Bearer key, when sent, is what the caller is: the session it came with does not count.
    body = send_held_reply(alice_client, stub, ["Still"])
    with alice_client.http.stream(
        "GET", body["stream_url"], headers={"Authorization": "Bearer sk-not-a-key"}
    ) as refused:
        assert refused.status_code == 401
        assert b"Still" not in refused.read()
    with alice_client.http.stream("GET", body["stream_url"]) as response:  # the session alone
        assert response.status_code == 200
        assert next(read_events(response.iter_bytes())).data["content"] == "Still"


def test_creating_a_key_asks_for_the_accounts_password(server, alice_client):
    # A session alone (left open, or stolen) must not mint a key that outlives it.
    missing = alice_client.http.post("/api/keys/", json={"name": "cli"})
    assert missing.status_code == 400
    assert missing.json()["error"]["fields"] == {"password": ["This field is required."]}
    wrong = alice_client.http.post("/api/keys/", json={"name": "cli", "password": "not-it"})
    assert wrong.status_code == 400
    error = wrong.json()["error"]
    assert error["fields"] == {"password": ["The password is not correct, so no key was created."]}
    assert "not-it" not in wrong.text
    assert not ApiKey.objects.exists()
    assert new_key(alice_client)["name"] == "laptop"


def test_guessing_the_password_for_a_key_is_locked_out_as_logins_are(
    server, alice_client, settings
):
    wrong = {"name": "cli", "password": "not-it"}
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert alice_client.http.post("/api/keys/", json=wrong).status_code == 400
    for body in (wrong, {"name": "cli", "password": alice_client.password}):
        refused = alice_client.http.post("/api/keys/", json=body)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "locked_out"
        minutes = settings.AXES_COOLOFF_TIME.seconds // 60
        assert f"try again in {minutes} minutes" in refused.json()["error"]["message"]
        # The time left, in whole seconds rounded up: the lockout began a moment ago.
        retry_after = int(refused.headers["Retry-After"])
        assert minutes * 60 - 60 < retry_after <= minutes * 60
    assert not ApiKey.objects.exists()
    # Later into the lockout, less of it is left.
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=minutes - 1))
    refused = alice_client.http.post("/api/keys/", json=wrong)
    assert "try again in 1 minute." in refused.json()["error"]["message"]
    assert 0 < int(refused.headers["Retry-After"]) <= 60
