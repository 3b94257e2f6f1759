"""Staff review conversations in Django admin: read-only, escaped, filtered, exported, totalled."""

import json
import re
import uuid
from datetime import timedelta

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations.models import Conversation, Message
from tests.chats import add_chat
from tests.stub import Script, openai_chunk, openai_usage, sse

PAYLOAD = '<script>alert("x")</script><img src=x onerror=alert(1)>'
CONVERSATIONS = "/admin/conversations/conversation/"
MESSAGES = "/admin/conversations/message/"


def row_of(html: str, title: str) -> str:
    """The changelist table row that shows `title`."""
    rows = re.findall(r"<tr[^>]*>.*?</tr>", html, re.S)
    return next(row for row in rows if f">{title}</a>" in row)


def test_only_active_staff_can_open_the_admin(server, alice, bob, client_for):
    conversation = add_chat(alice, "Private")
    pages = ["/admin/", CONVERSATIONS, f"{CONVERSATIONS}{conversation.pk}/change/", MESSAGES]
    for user in (None, alice):
        for page in pages:
            response = client_for(user).http.get(page)
            assert response.status_code == 302, page
            assert response.headers["Location"].startswith("/admin/login/")
    staff = client_for(bob)
    for page in pages:
        assert staff.http.get(page).status_code == 200, page


def test_conversation_list_shows_owner_model_messages_tokens_and_last_activity(
    server, stub, alice_client, client_for, bob
):
    stub.queue(Script(steps=[openai_chunk("Hi"), openai_chunk(finish_reason="stop"),
                             openai_usage(12, 3), sse("[DONE]")]))  # fmt: skip
    conversation = alice_client.new_conversation(title="Counted")
    body = alice_client.send(conversation["id"], "Count me").json()
    reply = alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])

    row = row_of(client_for(bob).http.get(CONVERSATIONS).text, "Counted")
    cells = dict(re.findall(r'<td class="field-(\w+)[^"]*">(.*?)</td>', row, re.S))
    assert cells["owner"] == "alice"
    assert cells["model"] == "openai:stub-model"
    assert cells["message_count"] == "2"
    assert cells["token_total"] == "15"
    completed = Message.objects.get(pk=reply["id"]).completed_at
    assert cells["last_activity"] != "-" and str(completed.year) in cells["last_activity"]

    # Searching the messages' text finds it with the same figures, each message counted once.
    found = row_of(client_for(bob).http.get(CONVERSATIONS + "?q=Count").text, "Counted")
    assert dict(re.findall(r'<td class="field-(\w+)[^"]*">(.*?)</td>', found, re.S)) == cells


def test_conversation_list_costs_the_same_queries_for_few_or_many_rows(bob, alice):
    staff = Client()
    staff.force_login(bob)

    def queries_for_list() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert staff.get(CONVERSATIONS).status_code == 200
        return len(queries)

    queries_for_list()  # the first request also caches bob's user (chatsite/users.py)
    for n in range(3):
        add_chat(alice, f"Few {n}", prompt_tokens=1, completion_tokens=1, total_tokens=2)
    few = queries_for_list()
    for n in range(30):
        add_chat(alice, f"Many {n}", prompt_tokens=1, completion_tokens=1, total_tokens=2)
    assert queries_for_list() == few


def test_filters_and_search_narrow_the_conversation_list(server, alice, charlie, bob, client_for):
    add_chat(alice, "Apples")
    Conversation.objects.get(title="Apples").messages.create(
        role="user", status="complete", content="banana bread"
    )
    add_chat(charlie, "Cherries", model="openai:stub-other", status="failed", error="Upstream")
    staff = client_for(bob)
    cases = {
        "?q=banana": {"Apples"},
        "?q=Cherr": {"Cherries"},
        f"?owner__id__exact={charlie.pk}": {"Cherries"},
        "?model__exact=openai:stub-other": {"Cherries"},
        "?reply_status=failed": {"Cherries"},
        "?reply_status=complete": {"Apples"},
        f"?created_at__year={timezone.now().year}": {"Apples", "Cherries"},
    }
    for query, expected in cases.items():
        html = staff.http.get(CONVERSATIONS + query).text
        shown = {title for title in ("Apples", "Cherries") if f">{title}</a>" in html}
        assert shown == expected, query
    messages = staff.http.get(f"{MESSAGES}?status__exact=failed").text
    assert "Cherries" in messages and "Apples" not in messages
    owned = staff.http.get(f"{MESSAGES}?conversation__owner__id__exact={alice.pk}").text
    assert "Apples" in owned and "Cherries" not in owned


def test_messages_are_shown_read_only_with_every_reviewed_field(server, alice, bob, client_for):
    conversation = add_chat(
        alice,
        "Reviewed",
        total_tokens=42,
        usage_source="estimated",
        time_to_first_token_ms=321,
        duration_ms=4567,
        status="failed",
        finish_reason="content_filter",
        error_code="upstream_error",
        error="The provider fell over",
    )
    staff = client_for(bob)
    page = staff.http.get(f"{CONVERSATIONS}{conversation.pk}/change/")
    assert page.status_code == 200
    html = page.text
    for header in ("Role", "Status", "Finish reason", "Model", "Total tokens", "Usage source",
                   "Time to first token ms", "Duration ms", "Error code", "Error"):  # fmt: skip
        assert f">{header}" in html, header
    shown = ("Reviewed!", "content_filter", "42", "Estimated", "321", "4567", "upstream_error")
    for value in (*shown, "fell over"):
        assert value in html
    assert "<textarea" not in html and 'name="messages-0-content"' not in html
    assert 'name="_save"' not in html

    message = conversation.messages.get(role="assistant")
    assert staff.http.post(f"{CONVERSATIONS}{conversation.pk}/change/", data={}).status_code == 403
    assert staff.http.post(f"{MESSAGES}{message.pk}/change/", data={}).status_code == 403
    assert staff.http.get(f"{CONVERSATIONS}add/").status_code == 403
    assert staff.http.get(f"{MESSAGES}{message.pk}/delete/").status_code == 403
    assert Message.objects.get(pk=message.pk).content == "Reviewed!"


def test_stored_html_and_scripts_stay_inert_in_admin_pages(
    server, stub, alice_client, bob, client_for
):
    stub.queue(Script(steps=[openai_chunk(reasoning=PAYLOAD), openai_chunk(PAYLOAD),
                             openai_chunk(finish_reason="stop"), sse("[DONE]")]))  # fmt: skip
    conversation = alice_client.new_conversation(title=PAYLOAD)
    body = alice_client.send(conversation["id"], PAYLOAD).json()
    reply = alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])
    assert reply["content"] == PAYLOAD  # stored as sent: escaping is the page's job

    staff = client_for(bob)
    pages = [
        f"{CONVERSATIONS}{conversation['id']}/change/",
        f"{MESSAGES}{reply['id']}/change/",
        f"{MESSAGES}{body['user_message']['id']}/change/",
        CONVERSATIONS,
        MESSAGES,
        "/admin/conversations/accessrecord/",
    ]
    for page in pages:
        html = staff.http.get(page).text
        assert "<script>alert" not in html, page
        assert "<img src=x onerror" not in html, page
        assert "&lt;script&gt;alert(" in html, page


def test_export_actions_download_the_selected_conversations(server, alice, bob, client_for):
    chosen = [add_chat(alice, "First"), add_chat(alice, "Second")]
    add_chat(alice, "Not chosen")
    staff = client_for(bob)
    selection = {"_selected_action": [str(c.pk) for c in chosen], "index": "0"}

    as_json = staff.http.post(CONVERSATIONS, data={**selection, "action": "export_json"})
    assert as_json.status_code == 200
    assert as_json.headers["Content-Disposition"].startswith("attachment;")
    exported = json.loads(as_json.text)["conversations"]
    assert [c["title"] for c in exported] == ["First", "Second"]
    assert [m["content"] for m in exported[0]["messages"]] == ["First?", "First!"]

    as_markdown = staff.http.post(CONVERSATIONS, data={**selection, "action": "export_markdown"})
    assert as_markdown.headers["Content-Type"].startswith("text/markdown")
    assert "# First" in as_markdown.text and "# Second" in as_markdown.text
    assert "Not chosen" not in as_markdown.text


def test_export_lists_conversations_made_at_the_same_instant_by_id(server, alice, bob, client_for):
    # Made in an order unlike their ids' (a database's order for ties is its own choice: SQLite
    # reads the selection by id here anyway, PostgreSQL in the order they were made).
    ids = sorted((uuid.uuid4() for _ in range(7)), key=lambda i: str(i)[::-1])
    now = timezone.now()
    Conversation.objects.bulk_create(
        Conversation(id=i, owner=alice, title=str(i), model="m", created_at=now) for i in ids
    )
    selection = {"_selected_action": [str(i) for i in ids], "index": "0"}
    exported = client_for(bob).http.post(CONVERSATIONS, data={**selection, "action": "export_json"})
    assert [c["title"] for c in json.loads(exported.text)["conversations"]] == sorted(map(str, ids))


def test_usage_page_totals_messages_and_tokens_per_user_day_and_model(
    server, alice, charlie, bob, client_for
):
    add_chat(alice, "A1", total_tokens=10)
    add_chat(alice, "A2", model="openai:stub-other", total_tokens=5)
    add_chat(charlie, "C1", total_tokens=7)
    old = add_chat(alice, "Old", total_tokens=1000)
    Message.objects.filter(conversation=old).update(created_at=timezone.now() - timedelta(days=40))
    staff = client_for(bob)
    assert 'href="/admin/conversations/conversation/usage/"' in staff.http.get(CONVERSATIONS).text

    def table(html: str, table_id: str) -> list[list[str]]:
        body = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S).group(1)
        rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
        return [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row) for row in rows]

    html = staff.http.get(f"{CONVERSATIONS}usage/").text  # the last 30 days
    today = timezone.localdate().isoformat()
    assert table(html, "usage-by-user-and-day")[1:] == [
        [today, "alice", "4", "15"],
        [today, "charlie", "2", "7"],
        ["Total", "6", "22"],
    ]
    assert table(html, "usage-by-model")[1:] == [
        ["openai:stub-model", "2", "17"],
        ["openai:stub-other", "1", "5"],
        ["Total", "3", "22"],
    ]
    assert table(html, "usage-by-user")[1:] == [["alice", "4", "15"], ["charlie", "2", "7"]]

    start = (timezone.localdate() - timedelta(days=60)).isoformat()
    wide = staff.http.get(f"{CONVERSATIONS}usage/?start={start}&end={today}").text
    assert table(wide, "usage-total")[1:] == [["8", "1022"]]
    assert client_for(alice).http.get(f"{CONVERSATIONS}usage/").status_code == 302


def test_usage_page_dates_at_the_ends_of_the_calendar_are_a_form_error(server, bob, client_for):
    staff = client_for(bob)
    for query in ("start=2026-01-01&end=9999-12-31", "start=0001-01-01&end=2026-01-01"):
        page = staff.http.get(f"{CONVERSATIONS}usage/?{query}")
        assert page.status_code == 200, query  # the last 30 days, and the form says why
        assert "Ensure this value is" in page.text, query
    backwards = staff.http.get(f"{CONVERSATIONS}usage/?start=2026-03-02&end=2026-03-01")
    assert backwards.status_code == 200
    assert "The start date is after the end date." in backwards.text
