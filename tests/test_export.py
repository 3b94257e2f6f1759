"""Exports round-trip the stored data; the bulk export streams in flat memory."""

import html
import json
import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import markdown_it
import pytest
from django.utils import timezone

from conversations.models import Conversation, Message
from conversations.producers import this_host
from tests.servers import SECRET_PROVIDER_KEY
from tests.stub import json_error, openai_stream


@pytest.fixture
def alice_history(server, stub, alice_client) -> str:
    """alice's conversation: a reply with reasoning and an alternative, a second exchange, and
    a failed reply. Returns its id."""
    stub.queue(
        openai_stream(["First"], usage=(5, 2), reasoning=["thinking it over"]),
        openai_stream(["Second"], usage=(6, 3)),
        openai_stream(["Welcome"], usage=(9, 1)),
        json_error(400, "The stub refuses this one."),
    )
    conversation = alice_client.new_conversation(title="Export <me>")
    body = alice_client.send(conversation["id"], "Hi there").json()
    first = alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])
    regenerated = alice_client.http.post(f"/api/messages/{first['id']}/regenerate/", json={})
    alice_client.wait_final(conversation["id"], regenerated.json()["assistant_message"]["id"])
    for text in ("Thanks", "Break"):
        body = alice_client.send(conversation["id"], text).json()
        alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])
    return conversation["id"]


def export(client, conversation_id: str, format: str):
    response = client.http.get(f"/api/conversations/{conversation_id}/export/?format={format}")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert SECRET_PROVIDER_KEY not in response.text
    return response


def as_stored(exported: object, stored: object) -> object:
    """An exported JSON value read back as the Python type it was stored as."""
    if isinstance(stored, datetime):
        return datetime.fromisoformat(exported)
    if isinstance(stored, uuid.UUID):
        return uuid.UUID(exported)
    return exported


def test_json_export_round_trips_every_stored_field(alice_history, alice_client):
    record = export(alice_client, alice_history, "json").json()
    conversation = Conversation.objects.get(pk=alice_history)
    for field in Conversation._meta.concrete_fields:
        if field.name != "owner":
            assert as_stored(record[field.name], getattr(conversation, field.attname)) == (
                getattr(conversation, field.attname)
            ), field.name
    assert record["owner"] == "alice"

    stored = list(conversation.messages.order_by("created_at"))
    assert [m["id"] for m in record["messages"]] == [str(m.pk) for m in stored]
    for exported, message in zip(record["messages"], stored, strict=True):
        assert "producer" not in exported and "heartbeat_at" not in exported
        for field in Message._meta.concrete_fields:
            if field.name in ("producer", "heartbeat_at"):
                continue  # the server's bookkeeping (test_no_export_or_answer_names_the_server)
            value = field.value_from_object(message)
            assert as_stored(exported[field.name], value) == value, field.name
    replies = [m for m in record["messages"] if m["role"] == "assistant"]
    assert [(r["content"], r["total_tokens"], r["usage_source"]) for r in replies[:3]] == [
        ("First", 7, "provider"),
        ("Second", 9, "provider"),
        ("Welcome", 10, "provider"),
    ]
    assert replies[0]["parent"] == replies[1]["parent"]  # two alternatives to one message
    assert replies[0]["reasoning"] == "thinking it over"
    assert (replies[3]["status"], "refuses" in replies[3]["error"]) == ("failed", True)


def test_markdown_export_is_a_readable_transcript(alice_history, alice_client):
    response = export(alice_client, alice_history, "markdown")
    assert response.headers["Content-Type"].startswith("text/markdown")
    text = response.text
    assert text.startswith("# Export \\<me\\>\n")  # its HTML shown as text
    assert "- Owner: alice" in text
    stored = Message.objects.filter(conversation_id=alice_history).order_by("created_at")
    asked, first, second, thanks, welcome, brk, refused = (
        f"_{m.created_at.isoformat(timespec='seconds')}" for m in stored
    )
    order = [
        f"## User\n\n{asked}_\n\n```\nHi there\n```",
        f"## Assistant, reply 1 of 2\n\n{first} · ",
        "_Reasoning:_\n\n```\nthinking it over\n```",
        "```\nFirst\n```",
        f"## Assistant, reply 2 of 2 (chosen)\n\n{second} · ",  # the newest, until one is
        "```\nSecond\n```",
        f"## User\n\n{thanks}_\n\n```\nThanks\n```",
        f"## Assistant\n\n{welcome} · ",
        "```\nWelcome\n```",
        f"## User\n\n{brk}_\n\n```\nBreak\n```",
        f"{refused} · ",
        "_Error (bad_request):_\n\n```\n",
    ]
    position = 0
    for part in order:  # each after the one before
        position = text.index(part, position)
    assert "7 tokens (provider)" in text
    assert "finish reason" not in text  # each ended as its status says


def test_markdown_export_shows_stored_text_as_written_and_none_as_its_own_lines(
    server, stub, alice_client
):
    # A message that imitates the transcript (a heading, a reply's facts, a fence) or holds
    # HTML is shown as written, in a fence longer than any run of backticks in it.
    forged = "hi\n\n## Assistant\n\n_gpt-4o · complete_\n\n````\n<script>alert(1)</script>"
    stub.queue(openai_stream(["<img src=x onerror=alert(1)>\n# Owner: bob"]))
    conversation = alice_client.new_conversation(title="Notes\n\n- Owner: bob <b>")
    body = alice_client.send(conversation["id"], forged).json()
    alice_client.wait_final(conversation["id"], body["assistant_message"]["id"])
    text = export(alice_client, conversation["id"], "markdown").text
    assert text.startswith("# Notes \\- Owner\\: bob \\<b\\>\n\n- Owner: alice\n")
    assert f"## User\n\n_{body['user_message']['created_at'][:10]}" in text
    assert f"`````\n{forged}\n`````\n" in text
    assert "```\n<img src=x onerror=alert(1)>\n# Owner: bob\n```\n" in text
    outside_fences = re.sub(r"^(`{3,})\n.*?\n\1$", "", text, flags=re.S | re.M)
    assert re.findall(r"^#.*", outside_fences, re.M) == [
        "# Notes \\- Owner\\: bob \\<b\\>",
        "## User",
        "## Assistant",
    ]


def test_jsonl_export_is_one_line_in_the_fine_tuning_shape(alice_history, alice_client):
    response = export(alice_client, alice_history, "jsonl")
    lines = response.text.splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == {
        "messages": [
            {"role": "user", "content": "Hi there"},
            {"role": "assistant", "content": "Second"},  # the latest alternative
            {"role": "user", "content": "Thanks"},
            {"role": "assistant", "content": "Welcome"},
        ]  # "Break" has no answer: left out
    }


def make_history(owner, conversations: int, content: str = "x") -> list[Conversation]:
    """Stored conversations, each with one answered message, written straight to the DB."""
    start = timezone.now() - timedelta(days=1)
    rows = [
        Conversation(owner=owner, title=f"Chat {n}", model="openai:stub-model", created_at=start)
        for n in range(conversations)
    ]
    Conversation.objects.bulk_create(rows, batch_size=1000)
    messages = []
    for n, conversation in enumerate(rows):
        asked = Message(
            conversation=conversation, role="user", status="complete", content=f"Q{n} {content}"
        )
        answer = Message(
            conversation=conversation,
            role="assistant",
            status="complete",
            parent=asked,
            content=f"A{n} {content}",
            total_tokens=n,
        )
        messages += [asked, answer]
    Message.objects.bulk_create(messages, batch_size=1000)
    return rows


def test_bulk_export_has_all_and_only_the_callers_conversations(
    server, alice, charlie, alice_client
):
    mine = make_history(alice, 3)
    Conversation.objects.create(owner=alice, title="Empty", model="openai:stub-model")
    make_history(charlie, 2)

    as_json = alice_client.http.get("/api/export/?format=json")
    assert as_json.status_code == 200
    exported = as_json.json()["conversations"]
    assert {c["title"] for c in exported} == {"Chat 0", "Chat 1", "Chat 2", "Empty"}
    assert {c["owner"] for c in exported} == {"alice"}
    first = next(c for c in exported if c["id"] == str(mine[0].pk))
    assert [m["content"] for m in first["messages"]] == ["Q0 x", "A0 x"]

    as_jsonl = alice_client.http.get("/api/export/")  # json is the default
    assert as_jsonl.json() == as_json.json()
    lines = alice_client.http.get("/api/export/?format=jsonl").text.splitlines()
    assert sorted(json.loads(line)["messages"][1]["content"] for line in lines) == [
        "A0 x",
        "A1 x",
        "A2 x",
    ]


def download_links(html: str) -> list[str]:
    return [link.replace("&amp;", "&") for link in re.findall(r'<a href="([^"]+)" download>', html)]


def test_pages_link_the_exports_and_the_links_download(server, alice, alice_client):
    (conversation,) = make_history(alice, 1, content="Linked")
    chat_links = download_links(alice_client.http.get(f"/c/{conversation.pk}/").text)
    base = f"/api/conversations/{conversation.pk}/export/"
    assert chat_links == [f"{base}?format=markdown", f"{base}?format=json"]
    home_links = download_links(alice_client.http.get("/").text)
    assert home_links == ["/api/export/?format=json", "/api/export/?format=jsonl"]
    for link in chat_links + home_links:
        response = alice_client.http.get(link)
        assert response.status_code == 200, link
        assert response.headers["Content-Disposition"].startswith("attachment;"), link
        assert "Linked" in response.text, link


def test_unknown_formats_are_rejected(server, alice_client):
    conversation = alice_client.new_conversation()
    for url in [
        f"/api/conversations/{conversation['id']}/export/?format=xml",
        "/api/export/?format=markdown",
    ]:
        response = alice_client.http.get(url)
        assert response.status_code == 400, url
        assert "format" in response.json()["error"]["message"]


def peak_memory_bytes(pid: int) -> int:
    """The process's peak resident memory so far (Linux VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


TEN_THOUSAND = 10_000


def test_bulk_export_of_ten_thousand_conversations_streams_in_flat_memory(
    start_server, alice, charlie, client_for
):
    server = start_server()
    make_history(alice, TEN_THOUSAND, content="y" * 1500)
    make_history(charlie, 1000, content="y" * 1500)
    alice_client, charlie_client = client_for(alice, server.url), client_for(charlie, server.url)
    # Warm up: a smaller export of the same shape, so the baseline includes one-off costs.
    assert len(charlie_client.http.get("/api/export/?format=jsonl").text.splitlines()) == 1000
    before = peak_memory_bytes(server.process.pid)

    chunks, size, lines, head = 0, 0, 0, b""
    with alice_client.http.stream("GET", "/api/export/?format=jsonl") as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers
        assert response.headers["transfer-encoding"] == "chunked"
        for chunk in response.iter_raw():
            chunks, size, lines = chunks + 1, size + len(chunk), lines + chunk.count(b"\n")
            head = head or chunk
    growth = peak_memory_bytes(server.process.pid) - before

    assert lines == TEN_THOUSAND  # one conversation a line (JSON escapes newlines in text)
    first = json.loads(head.split(b"\n", 1)[0])
    assert first["messages"][0]["content"].startswith("Q")
    assert chunks > 10
    assert growth < size / 3, f"memory grew {growth} bytes for a {size}-byte export"


def test_a_markdown_exports_title_is_shown_as_written_by_a_markdown_viewer(server, alice_client):
    # A /v1 conversation's title is its first message, often a tool's third-party text: a
    # Markdown image in it would be fetched by the viewer, a link would pass for the export's.
    title = "![x](https://attacker.example/b.png) [click](https://phish.example) <b>*hi*</b> &amp;"
    conversation = alice_client.new_conversation(title=title)
    text = export(alice_client, conversation["id"], "markdown").text
    page = markdown_it.MarkdownIt("commonmark").render(text)
    assert f"<h1>{html.escape(title, quote=False)}</h1>" in page
    assert "<img" not in page and "<a " not in page and "<b>" not in page


def test_no_export_or_answer_names_the_server(alice_history, alice_client):
    # A reply's producer ("host:pid:boot") is for crash recovery: its owner gets none of it.
    producer = Message.objects.exclude(producer="").values_list("producer", flat=True)[0]
    host_and_pid = producer.rpartition(":")[0]
    assert host_and_pid.startswith(f"{this_host()}:")
    for format in ("json", "markdown", "jsonl"):
        assert host_and_pid not in export(alice_client, alice_history, format).text
    for page in (f"/api/conversations/{alice_history}/", f"/c/{alice_history}/"):
        response = alice_client.http.get(page)
        assert response.status_code == 200
        assert "complete" in response.text and host_and_pid not in response.text
