"""chatsite on several processes: with the Redis event log any process streams or stops a reply."""

import subprocess
import sys
import uuid

import openai
import pytest
import redis
from django.conf import settings

from conversations.apikeys import create_key
from conversations.models import Message
from tests.client import (
    ChatClient,
    form_login,
    form_logout,
    is_logged_in,
    read_events,
    text_of,
)
from tests.replies import send_held_reply
from tests.servers import ServerProcess
from tests.stub import Gate, gated_stream, openai_stream


@pytest.fixture
def redis_prefix() -> str:
    return f"chatsite-test-{uuid.uuid4().hex}"


@pytest.fixture
def server_pair(start_server, redis_url, redis_prefix) -> tuple[ServerProcess, ServerProcess]:
    """Two server processes sharing one Redis (and the database)."""
    env = {"REDIS_URL": redis_url, "CHATSITE_REDIS_PREFIX": redis_prefix}
    return start_server(**env), start_server(**env)


@pytest.fixture
def two_servers(server_pair) -> tuple[str, str]:
    """The two processes' URLs."""
    return server_pair[0].url, server_pair[1].url


@pytest.fixture
def two_processes(two_servers, client_for, alice):
    first, second = two_servers
    return client_for(alice, base_url=first), client_for(alice, base_url=second)


def test_reply_produced_by_one_process_streams_live_from_another_and_resumes(two_processes, stub):
    producer_side, viewer_side = two_processes
    gate = Gate()
    stub.queue(gated_stream(["Across", " two"], gate, after=[" processes"]))
    conversation = producer_side.new_conversation()
    body = producer_side.send(conversation["id"], "Hi").json()

    with viewer_side.http.stream("GET", body["stream_url"]) as response:
        following = read_events(response.iter_bytes())
        events = [next(following), next(following)]  # while the reply still generates:
        gate.open()  # live, through Redis, not the stored reply read afterwards
        events.extend(following)
    assert [(e.id, e.name) for e in events] == [
        (1, "delta"),
        (2, "delta"),
        (3, "delta"),
        (4, "done"),
    ]
    assert text_of(events) == "Across two processes"
    assert events[-1].data["message"]["status"] == "complete"
    resumed = viewer_side.events(body["stream_url"], headers={"Last-Event-ID": "1"})
    assert resumed == events[1:]


def test_logging_out_on_one_process_ends_the_session_on_the_other(two_servers, alice):
    first, second = two_servers
    cookies = form_login(first, "alice")
    assert is_logged_in(second, cookies)  # the session is read there, and cached in Redis
    form_logout(first, cookies)
    assert not is_logged_in(second, cookies)


def test_a_user_deactivated_by_a_command_is_refused_by_every_process(
    start_server, redis_url, alice
):
    """The servers cache alice in Redis; `manage.py` in a process that serves no request
    (its signals connected by the app's ready()) drops that copy when it saves her."""
    env = {"REDIS_URL": redis_url, "CHATSITE_REDIS_PREFIX": f"chatsite-test-{uuid.uuid4().hex}"}
    first, second = start_server(**env), start_server(**env)
    cookies = form_login(first.url, "alice")
    assert is_logged_in(first.url, cookies) and is_logged_in(second.url, cookies)  # cached
    deactivate = "u = User.objects.get(username='alice'); u.is_active = False; u.save()"
    command = [sys.executable, "manage.py", "shell", "-c", deactivate]
    subprocess.run(command, cwd=settings.BASE_DIR, env=first.env, check=True)
    assert not is_logged_in(first.url, cookies)
    assert not is_logged_in(second.url, cookies)


def test_the_producing_process_streams_its_reply_without_reading_redis(
    start_server, redis_url, client_for, alice, stub
):
    prefix = f"chatsite-test-{uuid.uuid4().hex}"
    client = client_for(
        alice, base_url=start_server(REDIS_URL=redis_url, CHATSITE_REDIS_PREFIX=prefix).url
    )
    stub.queue(openai_stream(["Served", " from", " memory"]))
    conversation = client.new_conversation()
    store = redis.Redis.from_url(redis_url)
    reads_before = xread_calls(store)
    body = client.send(conversation["id"], "Hi").json()

    events = client.events(body["stream_url"])
    assert text_of(events) == "Served from memory"
    assert events[-1].name == "done"
    assert xread_calls(store) == reads_before  # no XREAD per token: read from memory
    # Redis holds every event all the same, for the other processes.
    key = f"{prefix}:reply:{body['assistant_message']['id']}"
    assert store.xlen(key) == len(events)


def xread_calls(store: redis.Redis) -> int:
    return store.info("commandstats").get("cmdstat_xread", {}).get("calls", 0)


def test_stop_sent_to_another_process_stops_the_producer(two_processes, server_pair, stub):
    producer_side, viewer_side = two_processes
    body = send_held_reply(producer_side, stub, ["Stop", " me"])
    reply_id = body["assistant_message"]["id"]

    with viewer_side.http.stream("GET", body["stream_url"]) as response:
        events = read_events(response.iter_bytes())
        seen = [next(events), next(events)]
        stopped = viewer_side.http.post(f"/api/messages/{reply_id}/stop/")
        seen.extend(events)

    assert stopped.status_code == 200
    assert stopped.json()["status"] == "stopped"
    assert stub.requests[0].wait_disconnected()
    assert text_of(seen) == "Stop me"
    assert seen[-1].data["message"]["status"] == "stopped"
    assert Message.objects.get(pk=reply_id).content == "Stop me"
    # Stopped by its producer, told through Redis, not stored by the viewer's fallback.
    assert "did not answer a stop" not in server_pair[1].log()


def test_a_delete_on_another_process_tells_the_window_following_the_reply(
    two_processes, stub, redis_url, redis_prefix
):
    producer_side, viewer_side = two_processes
    body = send_held_reply(producer_side, stub, ["Half"])
    conversation_id = body["user_message"]["conversation"]
    # A stop request not understood (another chatsite version's) leaves the listeners listening.
    redis.Redis.from_url(redis_url).publish(f"{redis_prefix}:stop", b"not-a-reply-id")

    with viewer_side.http.stream("GET", body["stream_url"]) as response:
        events = read_events(response.iter_bytes())
        assert next(events).name == "delta"
        deleted = viewer_side.http.delete(f"/api/conversations/{conversation_id}/")
        last = list(events)[-1]

    assert deleted.status_code == 204
    assert stub.requests[0].wait_disconnected()
    message = last.data["message"]
    assert (message["status"], message["error_code"]) == ("stopped", "conversation_deleted")
    assert message["error"] == "The conversation was deleted while this reply was being written."


def test_an_openai_completion_streams_through_the_redis_event_log(two_servers, stub, alice):
    """A /v1 completion on a process sharing Redis, and its reply followed from the other."""
    first, second = two_servers
    _, secret = create_key(alice)
    stub.queue(openai_stream(["Shared", " log"]))
    with openai.OpenAI(base_url=f"{first}/v1", api_key=secret, max_retries=0) as sdk:
        raw = sdk.chat.completions.with_streaming_response.create(
            model="openai:stub-model", messages=[{"role": "user", "content": "Hi"}], stream=True
        )
        with raw as response:
            reply_id = response.headers["X-Chatsite-Message"]
            text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    assert text == "Shared log"
    other = ChatClient(second, None, api_key=secret)
    try:
        events = other.events(f"/api/messages/{reply_id}/stream/")
    finally:
        other.close()
    assert text_of(events) == "Shared log" and events[-1].data["message"]["status"] == "complete"
