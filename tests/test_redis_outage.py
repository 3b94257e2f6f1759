"""chatsite on several processes with Redis unreachable: pages still work, a new reply fails at
once with its reason, a reply can still be stopped, and a reply Redis fails in the middle of
(exiting, or hanging) is finished and stored whole."""

import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
import redis
from django.utils import timezone

from conversations.models import Message
from tests.chats import add_chat
from tests.client import read_events, text_of, wait_for
from tests.conftest import service_missing
from tests.replies import send_held_reply
from tests.servers import free_port
from tests.stub import Gate, Script, gated_stream, openai_stream

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # nothing listens there: refused at once


@pytest.fixture
def own_redis() -> Iterator[tuple[subprocess.Popen, str]]:
    """A Redis server of the test's own, which it may stop; and its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        service_missing("redis-server is needed to stop Redis in the middle of a reply")
    port = free_port()
    command = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 30
    while True:  # a wait for it to listen, not a timing check
        try:
            redis.Redis.from_url(url, socket_timeout=1).ping()
            break
        except (redis.RedisError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    yield process, url
    process.kill()
    process.wait()


@pytest.fixture
def client_without_redis(start_server, client_for, alice):
    server = start_server(REDIS_URL=UNREACHABLE_REDIS, CHATSITE_REDIS_PREFIX="outage")
    return client_for(alice, base_url=server.url)


def test_a_reply_that_cannot_reach_redis_is_stored_as_failed_with_the_reason(
    client_without_redis, stub
):
    client = client_without_redis
    conversation = client.new_conversation()  # sessions are read from the database meanwhile
    posted = client.send(conversation["id"], "Hello")
    assert posted.status_code == 201, posted.text  # the message is stored
    body = posted.json()

    events = client.events(body["stream_url"])  # read from the database
    assert [event.name for event in events] == ["error"]
    error = events[0].data["error"]
    assert error["code"] == "event_log_unavailable"
    assert "Redis" in error["message"] and "127.0.0.1" not in error["message"]
    reply = Message.objects.get(pk=body["assistant_message"]["id"])
    assert reply.status == Message.Status.FAILED
    assert reply.error_code == "event_log_unavailable"
    assert stub.requests == []  # the provider was never called
    assert client.http.get(f"/api/conversations/{conversation['id']}/").status_code == 200


def test_a_reply_produced_elsewhere_can_be_stopped_while_redis_is_down(client_without_redis, alice):
    conversation = add_chat(
        alice,
        "Elsewhere",
        status=Message.Status.STREAMING,
        content="Half a",
        producer="another-host:4242:cafe0000",  # a live process elsewhere, beating
        heartbeat_at=timezone.now(),
    )
    reply = conversation.messages.get(role="assistant")
    stopped = client_without_redis.http.post(f"/api/messages/{reply.pk}/stop/")
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] == "stopped"
    reply.refresh_from_db()
    assert (reply.status, reply.content) == (Message.Status.STOPPED, "Half a")


def test_a_reply_stopped_while_redis_is_down_stops_reading_its_provider(
    start_server, client_for, client_without_redis, stub, alice
):
    # The producing process is not told (the stop cannot pass through Redis), so it finds
    # the reply stored as stopped at its next checkpoint and closes the provider's stream.
    producing = client_for(alice, base_url=start_server(CHATSITE_CHECKPOINT_SECONDS="0.1").url)
    body = send_held_reply(producing, stub, ["", "Half a"])
    reply_id = body["assistant_message"]["id"]

    stopped = client_without_redis.http.post(f"/api/messages/{reply_id}/stop/")
    assert stopped.status_code == 200, stopped.text
    assert stub.requests[0].wait_disconnected()  # no more generation, no more billing

    events = producing.events(body["stream_url"])
    assert events[-1].name == "done"
    assert events[-1].data["message"]["status"] == "stopped"
    stored = Message.objects.get(pk=reply_id)
    assert stored.status == Message.Status.STOPPED  # the producer's own write was refused
    assert stored.content == stopped.json()["content"]


@pytest.mark.parametrize("outage", ["exits", "hangs"])
def test_a_reply_redis_fails_in_the_middle_of_is_finished_and_stored_whole(
    outage, own_redis, start_server, client_for, stub, alice
):
    process, url = own_redis
    # A Redis that hangs (a paused machine) keeps its connections and answers nothing: each
    # command fails after redis-py's socket_timeout (5 s by default; here set in REDIS_URL).
    client = client_for(alice, base_url=start_server(REDIS_URL=f"{url}?socket_timeout=0.5").url)
    gate = Gate()
    stub.queue(gated_stream(["Before"], gate, after=[" after"]))
    conversation = client.new_conversation()
    body = client.send(conversation["id"], "Go").json()
    gate.wait_reached()

    if outage == "exits":
        process.kill()
        process.wait()
    else:
        process.send_signal(signal.SIGSTOP)  # own_redis kills it, stopped or not
    gate.open()

    # The pages' sessions, cached in that Redis, are read from the database meanwhile.
    reply = client.wait_final(conversation["id"], body["assistant_message"]["id"])
    assert (reply["status"], reply["content"]) == ("complete", "Before after")
    events = client.events(body["stream_url"])  # from this process's own copy of the events
    assert text_of(events) == "Before after"
    assert events[-1].data["message"]["status"] == "complete"


def test_events_redis_missed_mid_reply_reach_other_processes_when_it_ends(
    own_redis, start_server, client_for, stub, alice
):
    # An append that times out (Redis stalled for a moment, or a process too busy to read the
    # answer in time) leaves the reply unshared; its end sends what Redis missed first, so a
    # stream on another process still gets every token, in order.
    process, url = own_redis
    env = {"REDIS_URL": f"{url}?socket_timeout=0.5", "CHATSITE_HEARTBEAT_SECONDS": "0.2"}
    producing_server = start_server(**env)
    producing = client_for(alice, base_url=producing_server.url)
    viewing = client_for(alice, base_url=start_server(**env).url)
    stalled, resumed = Gate(), Gate()
    steps = openai_stream(["Before", " during", " after"]).steps
    steps.insert(2, stalled)  # after the role chunk and "Before"
    steps.insert(4, resumed)  # after " during"
    stub.queue(Script(steps=steps))
    conversation = producing.new_conversation()
    body = producing.send(conversation["id"], "Go").json()
    stalled.wait_reached()

    seen, following = [], threading.Event()

    def watch() -> None:  # the other process's stream, open from the start
        with viewing.http.stream("GET", body["stream_url"]) as response:
            for event in read_events(response.iter_bytes()):
                seen.append(event)
                following.set()
                if event.name in ("done", "error"):
                    return

    viewer = threading.Thread(target=watch)
    viewer.start()
    assert following.wait(30)
    process.send_signal(signal.SIGSTOP)  # Redis stalls: " during" is not acknowledged
    stalled.open()
    wait_for(lambda: "finishing it unshared" in producing_server.log(), "the append to fail")
    process.send_signal(signal.SIGCONT)
    resumed.open()
    viewer.join(30)

    assert text_of(seen) == "Before during after"
    assert [event.id for event in seen] == list(range(1, len(seen) + 1))
    assert seen[-1].name == "done"


def drop_every_connection(url: str) -> None:
    """What a Redis restart (or a proxy dropping idle connections) does to every process's pool."""
    with redis.Redis.from_url(url) as admin:
        admin.client_kill_filter(_type="normal", skipme=True)
        admin.client_kill_filter(_type="pubsub")


def test_a_reply_goes_on_reaching_other_processes_after_redis_dropped_connections(
    own_redis, start_server, client_for, stub, alice
):
    _, url = own_redis
    producing = client_for(alice, base_url=start_server(REDIS_URL=url).url)
    viewing_server = start_server(REDIS_URL=url)
    viewing = client_for(alice, base_url=viewing_server.url)
    dropped, ending = Gate(), Gate()
    steps = openai_stream(["Before", " after"]).steps
    steps.insert(2, dropped)  # after the role chunk and "Before"
    steps.insert(4, ending)  # after " after": the reply is not over yet
    stub.queue(Script(steps=steps))
    conversation = producing.new_conversation()
    body = producing.send(conversation["id"], "Go").json()
    dropped.wait_reached()

    with viewing.http.stream("GET", body["stream_url"]) as response:
        events = (e for e in read_events(response.iter_bytes()) if e.name == "delta")
        assert next(events).data["content"] == "Before"
        drop_every_connection(url)
        dropped.open()
        # Live, while the reply still waits at its last gate: not only once it ends.
        assert next(events).data["content"] == " after"
        ending.open()
    reply = producing.wait_final(conversation["id"], body["assistant_message"]["id"])
    assert (reply["status"], reply["content"]) == ("complete", "Before after")
    # Expected, and recovered from: a warning saying why, not a traceback in the error log.
    log = viewing_server.log()
    assert "WARNING conversations.eventlog_redis_batches Reading followed replies failed" in log
    assert "Traceback" not in log
