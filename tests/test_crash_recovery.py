"""A server killed mid-reply: the next process marks the reply interrupted with its checkpoint."""

import os
import socket
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.utils import timezone

from conversations.models import Conversation, Message
from conversations.producers import PRODUCER_ID, host_id, process_started, this_host
from conversations.providers.registry import default_model
from conversations.recovery import INTERRUPTED_REASON, STALE_AFTER, recover_orphaned_replies
from tests.client import first_text, text_of, wait_for
from tests.replies import HISTORY, MODEL, send_held_reply, stored_reply
from tests.stub import Gate, Script, gated_stream, openai_chunk, openai_usage, sse


def test_reply_is_interrupted_with_its_checkpoint_after_sigkill(
    start_server, stub, client_for, alice
):
    first = start_server(CHATSITE_CHECKPOINT_SECONDS="0.05")
    client = client_for(alice, base_url=first.url)
    body = send_held_reply(client, stub, ["Half", " a reply"])
    reply_id = body["assistant_message"]["id"]
    checkpointed = wait_for(
        lambda: Message.objects.filter(pk=reply_id, content="Half a reply").first(),
        "the checkpoint",
    )
    assert checkpointed.status == "streaming"

    first.kill()
    second = start_server()
    reply = wait_for(
        lambda: Message.objects.filter(pk=reply_id).exclude(status="streaming").first(),
        "recovery",
    )
    assert reply.status == "interrupted"
    assert reply.content == "Half a reply"
    assert "server stopped" in reply.error
    assert reply.usage_source == "estimated"
    assert reply.completion_tokens == 3  # "Half a reply", about four characters a token
    assert reply.prompt_tokens > 0  # "Go", as asked (budgets count it)
    assert reply.total_tokens == reply.prompt_tokens + reply.completion_tokens

    # The page's "regenerate" works on the interrupted reply, on the new process.
    client = client_for(alice, base_url=second.url)
    again = client.http.post(f"/api/messages/{reply_id}/regenerate/")
    assert again.status_code == 201
    conversation_id = body["user_message"]["conversation"]
    final = client.wait_final(conversation_id, again.json()["assistant_message"]["id"])
    assert final["status"] == "complete"


def test_a_reply_is_stored_as_streaming_from_its_first_token(start_server, stub, client_for, alice):
    # Checkpoints an hour apart: only the first-token save can make the reply "streaming".
    alice_client = client_for(alice, base_url=start_server(CHATSITE_CHECKPOINT_SECONDS="3600").url)
    reply_id = send_held_reply(alice_client, stub, ["First"])["assistant_message"]["id"]
    reply = wait_for(
        lambda: Message.objects.filter(pk=reply_id, status="streaming").first(), "streaming"
    )
    assert reply.content == "First"


def test_a_reply_done_before_its_first_token_is_saved_is_written_once(
    start_server, stub, client_for, alice
):
    # First-token saves an hour off: a reply that ends before then is written by its end alone.
    server = start_server(
        CHATSITE_CHECKPOINT_SECONDS="3600", CHATSITE_FIRST_TOKEN_SAVE_SECONDS="3600"
    )
    client = client_for(alice, base_url=server.url)
    gate = Gate()
    stub.queue(gated_stream(["Quick"], gate, after=[], usage=(3, 1)))
    conversation = client.new_conversation()
    reply_id = client.send(conversation["id"], "Hi").json()["assistant_message"]["id"]
    gate.wait_reached()
    created = Message.objects.get(pk=reply_id)
    gate.open()

    assert client.wait_final(conversation["id"], reply_id)["content"] == "Quick"
    stored = Message.objects.get(pk=reply_id)
    assert created.status == "pending"  # the first token was not saved on its own
    assert stored.heartbeat_at == created.heartbeat_at  # nor checkpointed before the end


def test_every_running_reply_is_checkpointed(start_server, stub, client_for, alice):
    # Several replies at once share one checkpoint loop: each one's text must still be saved.
    client = client_for(alice, base_url=start_server(CHATSITE_CHECKPOINT_SECONDS="0.05").url)
    middles, ends = [Gate() for _ in range(4)], [Gate() for _ in range(4)]
    for middle, end in zip(middles, ends, strict=True):
        ending = [openai_chunk(finish_reason="stop"), openai_usage(5, 2), sse("[DONE]")]
        steps = [openai_chunk("Half"), middle, openai_chunk(" done"), end, *ending]
        stub.queue(Script(steps=steps))
    replies = []
    for _ in middles:
        conversation = client.new_conversation()
        sent = client.send(conversation["id"], "Go").json()["assistant_message"]["id"]
        replies.append((conversation["id"], sent))
    reply_ids = [reply_id for _, reply_id in replies]

    def stored_with(content: str) -> bool:
        stored = Message.objects.filter(pk__in=reply_ids, content=content, status="streaming")
        return stored.count() == len(reply_ids)

    wait_for(lambda: stored_with("Half"), "every first token saved")
    for middle in middles:
        middle.open()
    for end in ends:
        end.wait_reached()
    wait_for(lambda: stored_with("Half done"), "every reply's checkpoint")

    for end in ends:
        end.open()
    for conversation_id, reply_id in replies:
        final = client.wait_final(conversation_id, reply_id)
        assert (final["status"], final["content"]) == ("complete", "Half done")


def test_a_reply_cut_by_a_graceful_stop_is_stored_interrupted_with_every_token_it_had(
    start_server, stub, client_for, alice
):
    # SIGTERM, as a deploy stops a server: the reply is stored at once, interrupted with its
    # whole text (none was saved yet), not failed by the provider connection closing on the
    # way out, nor left generating for the next process to find.
    first = start_server(CHATSITE_CHECKPOINT_SECONDS="60", CHATSITE_FIRST_TOKEN_SAVE_SECONDS="60")
    client = client_for(alice, base_url=first.url)
    body = send_held_reply(client, stub, ["Half", " a reply"])
    reply_id = body["assistant_message"]["id"]
    seen = client.events(body["stream_url"], limit=2)
    assert text_of(seen) == "Half a reply"  # produced, not saved
    assert Message.objects.get(pk=reply_id).content == ""

    first.stop()
    reply = Message.objects.get(pk=reply_id)
    assert (reply.status, reply.content) == ("interrupted", "Half a reply")
    assert (reply.error_code, reply.error) == ("interrupted", INTERRUPTED_REASON)
    assert reply.prompt_tokens > 0  # it was asked: its prompt counts
    assert " ERROR " not in first.log() and "Unclosed" not in first.log()


def test_a_v1_reply_cut_by_a_graceful_stop_is_interrupted_not_stopped_for_its_client(
    start_server, stub, alice, alice_key
):
    # The server cuts its open requests as it shuts down: its /v1 client has not left, so
    # the reply is not stored as stopped for a client that disconnected.
    server = start_server(CHATSITE_CHECKPOINT_SECONDS="60", CHATSITE_FIRST_TOKEN_SAVE_SECONDS="60")
    stub.queue(gated_stream(["Before"], Gate(), after=[" after"]))
    body = {"model": MODEL, "messages": HISTORY[1:2], "stream": True}
    headers = {"Authorization": f"Bearer {alice_key}"}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body, headers=headers) as r:
        lines = r.iter_lines()  # kept: dropped, it would close the connection
        assert first_text(lines) == "Before"
        server.stop()
    reply = stored_reply()
    assert (reply.status, reply.content) == ("interrupted", "Before")
    assert (reply.error_code, reply.error) == ("interrupted", INTERRUPTED_REASON)


def test_a_reply_this_process_has_just_stored_is_not_taken_for_an_orphan(alice):
    # The message POST stores a reply, then starts its producer: a sweep between the two must
    # leave it be. A reply of this process that stays without a producer is recovered later.
    conversation = Conversation.objects.create(owner=alice, model=default_model().id)
    _, reply, _ = conversation.post_user_message("Hi", default_model(), None, PRODUCER_ID)
    assert recover_orphaned_replies() == 0
    assert Message.objects.get(pk=reply.pk).status == "pending"
    long_ago = timezone.now() - STALE_AFTER - timedelta(seconds=1)
    Message.objects.filter(pk=reply.pk).update(heartbeat_at=long_ago)
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=long_ago)
    assert recover_orphaned_replies() == 1
    assert Message.objects.get(pk=reply.pk).status == "interrupted"
    # As a finished reply does, so a tool syncing with ?updated_after= reads the new status.
    assert Conversation.objects.get(pk=conversation.pk).updated_at > long_ago


def test_a_live_process_here_keeps_its_reply_unless_its_pid_went_to_a_later_one(alice):
    # Judged by the process, not the heartbeat, which a live producer misses while the
    # database is out of reach: pid 1 stands for a live producer on this host.
    started = process_started(1)
    long_ago = timezone.now() - STALE_AFTER - timedelta(seconds=1)
    producers = {
        "the same process, beating or not": f"{this_host()}:1:{started}-cafe0000",
        "an id without a start time (older)": f"{this_host()}:1:cafe0000",
        "a later process given the pid": f"{this_host()}:1:{int(started) - 1}-cafe0000",
    }
    replies = {}
    for why, producer in producers.items():
        conversation = Conversation.objects.create(owner=alice, model=default_model().id)
        _, reply, _ = conversation.post_user_message(why, default_model(), None, producer)
        Message.objects.filter(pk=reply.pk).update(heartbeat_at=long_ago)
        replies[why] = reply.pk
    assert recover_orphaned_replies() == 1
    statuses = dict(Message.objects.filter(pk__in=replies.values()).values_list("pk", "status"))
    assert {why: statuses[pk] for why, pk in replies.items()} == {
        "the same process, beating or not": "pending",  # as stored: not taken
        "an id without a start time (older)": "pending",
        "a later process given the pid": "interrupted",
    }


@pytest.mark.skipif(sys.platform != "linux", reason="pid namespaces are Linux's")
def test_a_process_is_named_with_its_machine_and_pid_namespace(alice):
    # Containers sharing a host name each have their own pids: pid 7 in one is not pid 7 in
    # another, so a pid alone must not decide that another container's reply is orphaned.
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    assert this_host() == host_id(socket.gethostname(), boot_id, namespace)
    assert this_host() != host_id(socket.gethostname(), boot_id, "")
    assert PRODUCER_ID.startswith(f"{this_host()}:{os.getpid()}:")


def test_machines_are_told_apart_by_their_whole_name_boot_and_pid_namespace():
    pod = "chatsite-production-web-frontend-workers-7d9f8c6b5d-"  # a long Deployment's pods
    ids = {
        host_id(pod + "x2k4p", "boot-1", "4026532281"),
        host_id(pod + "q8z7m", "boot-1", "4026532281"),  # differs past any cut of its name
        host_id(pod + "x2k4p", "boot-2", "4026532281"),  # a machine given the same name
        host_id(pod + "x2k4p", "boot-1", "4026532282"),  # a container beside it
    }
    assert len(ids) == 4
    assert host_id(pod + "x2k4p", "boot-1", "4026532281") in ids  # the same machine: the same
    assert all(len(name) <= 45 and ":" not in name for name in ids)  # fits host:pid:boot
