"""Staff reading another user's conversation leaves a record nobody can edit; own reads none."""

import json

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from conversations.apikeys import create_key
from conversations.models import AccessRecord
from tests.stub import openai_stream

CONVERSATIONS = "/admin/conversations/conversation/"
RECORDS = "/admin/conversations/accessrecord/"
MESSAGES = "/admin/conversations/message/"


@pytest.fixture
def alices_chat(server, stub, alice_client) -> dict:
    stub.queue(openai_stream(["Dear", " diary"]))
    conversation = alice_client.new_conversation(title="Alice's diary")
    body = alice_client.send(conversation["id"], "my secret").json()
    alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])
    return {"id": conversation["id"], "reply": body["assistant_message"]["id"]}


def test_staff_opening_another_users_conversation_in_admin_is_recorded(
    alices_chat, alice, bob, client_for
):
    staff = client_for(bob)
    before = timezone.now()
    page = staff.http.get(f"{CONVERSATIONS}{alices_chat['id']}/change/")
    assert page.status_code == 200 and "my secret" in page.text

    record = AccessRecord.objects.get()
    assert (record.actor, record.actor_username) == (bob, "bob")
    assert (record.owner, record.owner_username) == (alice, "alice")
    assert (str(record.conversation_id), record.conversation_title) == (
        alices_chat["id"],
        "Alice's diary",
    )
    assert (record.channel, record.action) == ("admin", "view")
    assert record.path == f"{CONVERSATIONS}{alices_chat['id']}/change/"
    assert before <= record.created_at <= timezone.now()

    staff.http.get(f"/admin/conversations/message/{alices_chat['reply']}/change/")
    assert AccessRecord.objects.count() == 2
    assert AccessRecord.objects.first().path.startswith("/admin/conversations/message/")


def test_reading_your_own_conversations_leaves_no_record(
    server, stub, alices_chat, alice_client, bob, client_for
):
    staff = client_for(bob)
    own = staff.new_conversation(title="Bob's own")
    reply = staff.send(own["id"], "note to self").json()["assistant_message"]
    staff.wait_final(own["id"], reply["id"])
    assert staff.http.get(f"{CONVERSATIONS}{own['id']}/change/").status_code == 200
    assert staff.http.get(f"/api/conversations/{own['id']}/export/").status_code == 200
    assert staff.http.get("/api/export/?owner=bob").status_code == 200
    assert alice_client.http.get(f"/api/conversations/{alices_chat['id']}/export/").is_success
    assert alice_client.http.get("/api/export/").is_success
    assert AccessRecord.objects.count() == 0


def test_staff_read_other_users_data_over_the_api_only_by_export_with_owner(
    alices_chat, bob, client_for
):
    staff = client_for(bob)
    conversation = alices_chat["id"]
    # Without ?owner= staff are like everyone: another user's ids do not exist.
    assert staff.http.get(f"/api/conversations/{conversation}/").status_code == 404
    assert staff.http.get(f"/api/conversations/{conversation}/export/").status_code == 404
    assert staff.http.get(f"/api/conversations/{conversation}/?owner=alice").status_code == 404
    assert AccessRecord.objects.count() == 0

    one = staff.http.get(f"/api/conversations/{conversation}/export/?owner=alice")
    assert one.status_code == 200
    assert [m["content"] for m in one.json()["messages"]] == ["my secret", "Dear diary"]
    record = AccessRecord.objects.get()
    assert (record.channel, record.action, record.owner_username) == ("api", "export", "alice")
    assert str(record.conversation_id) == conversation

    everything = staff.http.get("/api/export/?owner=alice&format=jsonl")
    assert json.loads(everything.text)["messages"][0]["content"] == "my secret"
    record = AccessRecord.objects.first()
    assert (record.action, record.owner_username, record.conversation) == (
        "export_all",
        "alice",
        None,
    )
    assert staff.http.get("/api/export/?owner=nobody").status_code == 404
    assert AccessRecord.objects.count() == 2


def test_non_staff_owner_parameter_is_ignored(alices_chat, charlie_client):
    conversation = alices_chat["id"]
    for format in ("json", "markdown", "jsonl"):
        url = f"/api/conversations/{conversation}/export/?format={format}&owner=alice"
        response = charlie_client.http.get(url)
        assert response.status_code == 404, format
        assert "secret" not in response.text
    everything = charlie_client.http.get("/api/export/?owner=alice")
    assert everything.status_code == 200
    assert everything.json() == {"conversations": []}
    assert AccessRecord.objects.count() == 0


def test_staff_export_action_in_admin_is_recorded(alices_chat, bob, client_for):
    selection = {"_selected_action": [alices_chat["id"]], "index": "0", "action": "export_json"}
    exported = client_for(bob).http.post(CONVERSATIONS, data=selection)
    assert exported.status_code == 200
    record = AccessRecord.objects.get()
    assert (record.channel, record.action, record.owner_username) == ("admin", "export", "alice")


def test_staff_list_the_records_and_nobody_can_change_or_delete_them(
    alices_chat, bob, charlie, client_for
):
    staff = client_for(bob)
    staff.http.get(f"{CONVERSATIONS}{alices_chat['id']}/change/")
    record = AccessRecord.objects.get()

    listing = staff.http.get(RECORDS)
    assert listing.status_code == 200
    assert "Alice&#x27;s diary" in listing.text and ">bob<" in listing.text
    detail = staff.http.get(f"{RECORDS}{record.pk}/change/")
    assert detail.status_code == 200 and 'name="_save"' not in detail.text

    root = get_user_model().objects.create_superuser("root", password="root-password")
    for user in (bob, root):
        client = client_for(user)
        assert client.http.post(f"{RECORDS}{record.pk}/change/", data={}).status_code == 403
        assert (
            client.http.post(f"{RECORDS}{record.pk}/delete/", data={"post": "yes"}).status_code
            == 403
        )
        assert client.http.get(f"{RECORDS}add/").status_code == 403
    assert client_for(charlie).http.get(RECORDS).status_code == 302  # to the login page

    record.actor_username = "someone else"
    with pytest.raises(PermissionError):
        record.save()
    with pytest.raises(PermissionError):
        record.delete()
    with pytest.raises(PermissionError):
        AccessRecord.objects.update(actor_username="someone else")
    with pytest.raises(PermissionError):
        AccessRecord.objects.all().delete()
    assert AccessRecord.objects.get().actor_username == "bob"


def test_records_outlive_the_conversation_they_name(alices_chat, alice_client, bob, client_for):
    client_for(bob).http.get(f"{CONVERSATIONS}{alices_chat['id']}/change/")
    assert alice_client.http.delete(f"/api/conversations/{alices_chat['id']}/").status_code == 204
    record = AccessRecord.objects.get()
    assert record.conversation is None
    assert (record.conversation_title, record.owner_username) == ("Alice's diary", "alice")


def test_a_staff_api_key_cannot_export_another_users_conversations(alices_chat, bob, server):
    # An API key is for its owner's tools: leaked, a staff key must not copy every history.
    _, secret = create_key(bob, "bob's script")
    headers = {"Authorization": f"Bearer {secret}"}
    conversation = alices_chat["id"]
    for path in (f"/api/conversations/{conversation}/export/", "/api/export/"):
        response = httpx.get(f"{server.url}{path}?owner=alice", headers=headers)
        assert response.status_code == 403, response.text
        assert "signed in" in response.json()["error"]["message"]
        assert "secret" not in response.text
    assert httpx.get(f"{server.url}/api/export/", headers=headers).status_code == 200  # his own
    assert AccessRecord.objects.count() == 0


def test_staff_searching_other_users_messages_in_admin_is_recorded(alices_chat, bob, client_for):
    staff = client_for(bob)
    assert staff.http.get(CONVERSATIONS).status_code == 200  # the list alone: no record
    assert staff.http.get(CONVERSATIONS, params={"q": "no such words"}).status_code == 200
    assert staff.http.get(CONVERSATIONS, params={"q": "  "}).status_code == 200  # no words
    assert AccessRecord.objects.count() == 0  # a search finding nothing read nothing

    found = staff.http.get(CONVERSATIONS, params={"q": "secret"})
    assert found.status_code == 200 and "Alice&#x27;s diary" in found.text
    record = AccessRecord.objects.get()
    assert (record.channel, record.action, record.owner_username) == ("admin", "search", "alice")
    assert (str(record.conversation_id), record.path) == (
        alices_chat["id"],
        f"{CONVERSATIONS}?q=secret",
    )

    messages = staff.http.get("/admin/conversations/message/", params={"q": "diary"})
    assert messages.status_code == 200
    # Both of alice's messages match (by their conversation's title): one record for it.
    assert (
        AccessRecord.objects.filter(path__startswith="/admin/conversations/message/").count() == 1
    )


def test_admin_lists_count_no_matches_by_owner(alices_chat, bob, client_for):
    # Facet counts would say how many of alice's conversations a search narrowed to bob's own
    # matched, with none of them shown (and so none recorded).
    searches = {
        CONVERSATIONS: {"q": "secret", "owner__id__exact": str(bob.pk), "_facets": "1"},
        MESSAGES: {"q": "secret", "conversation__owner__id__exact": str(bob.pk), "_facets": "1"},
    }
    for path, params in searches.items():
        page = client_for(bob).http.get(path, params=params)
        assert page.status_code == 200
        assert "alice" in page.text and "alice (1)" not in page.text
    assert AccessRecord.objects.count() == 0


def test_admin_lists_take_only_their_own_filters_from_the_url(alices_chat, bob, client_for):
    # A URL filter on text (?content__icontains=) would find alice's words as a search does,
    # with nothing recorded: only the filters the list offers are taken.
    staff = client_for(bob)
    reads = {
        MESSAGES: [
            "content__icontains",
            "content__startswith",
            "reasoning__contains",
            "conversation__owner__password__startswith",
        ],
        CONVERSATIONS: ["system_prompt__icontains", "messages__content__icontains"],
    }
    for path, lookups in reads.items():
        for lookup in lookups:
            page = staff.http.get(path, params={lookup: "secret"})
            assert page.status_code == 400, (path, lookup)
            assert "Alice&#x27;s diary" not in page.text
    assert AccessRecord.objects.count() == 0

    offered = {
        MESSAGES: {"status__exact": "complete", "conversation__owner__id__exact": "1"},
        CONVERSATIONS: {"reply_status": "complete", "model__exact": "x", "source__exact": "chat"},
    }
    for path, params in offered.items():
        assert staff.http.get(path, params=params).status_code == 200, params
    year = {"created_at__year": str(timezone.now().year), "created_at__gte": "2000-01-01"}
    assert staff.http.get(CONVERSATIONS, params=year).status_code == 200


def test_admin_autocomplete_finds_nothing_of_other_users(alices_chat, bob, client_for):
    # Django's autocomplete searches a list's search fields, message text among them, outside
    # the list (and its record): no list uses it, so it is not there.
    staff = client_for(bob)
    for model, field in [("message", "conversation"), ("message", "parent")]:
        params = {"app_label": "conversations", "model_name": model, "field_name": field}
        found = staff.http.get("/admin/autocomplete/", params={**params, "term": "secret"})
        assert found.status_code == 404
        assert "diary" not in found.text


def test_a_link_on_another_site_cannot_make_staff_export_another_users_conversations(
    alices_chat, bob, client_for
):
    # A top-level navigation carries the session cookie (SameSite=Lax): the browser says
    # where it came from (Sec-Fetch-Site), and only this site's own pages, or an address
    # typed in, export another user's data.
    staff = client_for(bob)
    conversation = alices_chat["id"]
    for path in (f"/api/conversations/{conversation}/export/", "/api/export/"):
        for elsewhere in ("cross-site", "same-site"):
            refused = staff.http.get(f"{path}?owner=alice", headers={"Sec-Fetch-Site": elsewhere})
            assert refused.status_code == 403, refused.text
            assert "another site" in refused.json()["error"]["message"]
    assert AccessRecord.objects.count() == 0
    own = staff.http.get("/api/export/", headers={"Sec-Fetch-Site": "cross-site"})
    assert own.status_code == 200  # his own data: nothing recorded, nothing to forge
    for typed_or_here in ("none", "same-origin"):
        path = "/api/export/?owner=alice&format=jsonl"
        exported = staff.http.get(path, headers={"Sec-Fetch-Site": typed_or_here})
        assert exported.status_code == 200 and "Dear diary" in exported.text
    assert AccessRecord.objects.count() == 2
