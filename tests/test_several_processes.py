"""chatsite on several processes: with the Redis event log any process streams or stops a reply."""

import asyncio
import importlib.metadata
import re
import subprocess
import sys
import uuid

import openai
import pytest
import redis
import redis.asyncio
from django.conf import settings

from conversations.apikeys import create_key
from conversations.eventlog import HEARTBEAT, ReplyEvents
from conversations.eventlog_redis import RedisEventLog
from conversations.models import Message
from tests.client import (
    ChatClient,
    form_login,
    form_logout,
    is_logged_in,
    read_events,
    text_of,
)
from tests.stub import openai_stream, send_held_reply


@pytest.fixture
def two_servers(start_server, redis_url) -> tuple[str, str]:
    """Two server processes sharing one Redis (and the database): their URLs."""
    env = {"REDIS_URL": redis_url, "CHATSITE_REDIS_PREFIX": f"chatsite-test-{uuid.uuid4().hex}"}
    return start_server(**env).url, start_server(**env).url


@pytest.fixture
def two_processes(two_servers, client_for, alice):
    first, second = two_servers
    return client_for(alice, base_url=first), client_for(alice, base_url=second)


def test_reply_produced_by_one_process_streams_from_another_and_resumes(two_processes, stub):
    producer_side, viewer_side = two_processes
    stub.queue(openai_stream(["Across", " two", " processes"]))
    conversation = producer_side.new_conversation()
    body = producer_side.send(conversation["id"], "Hi").json()

    events = viewer_side.events(body["stream_url"])
    assert text_of(events) == "Across two processes"
    assert events[-1].name == "done"
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


def test_stop_sent_to_another_process_stops_the_producer(two_processes, stub):
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


def test_many_followers_on_one_process_share_one_redis_reader(redis_url, monkeypatch):
    # A blocked XREAD per follower held a connection per open stream (redis-py's default pool
    # stops at 100) and a read per token each; one reader now serves every follower.
    followers = 150
    # Nor may a new connection look redis-py's version up in the installed packages each time.
    lookups = []
    version = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata, "version", lambda name: lookups.append(name) or version(name)
    )
    prefix = f"chatsite-test-{uuid.uuid4().hex}"
    # The producing process's own followers read from memory: these follow from another.
    event_log, elsewhere = RedisEventLog(redis_url, prefix), RedisEventLog(redis_url, prefix)
    reply_id = uuid.uuid4()

    async def follow_to_the_end() -> bytes:
        received = b""
        async for _, frame in await elsewhere.follow(reply_id, 0, idle_seconds=30):
            received += b"" if frame == HEARTBEAT else frame
        return received

    async def scenario() -> tuple[list[bytes], int]:
        await event_log.open(reply_id)
        readers = [asyncio.ensure_future(follow_to_the_end()) for _ in range(followers)]
        observer = redis.asyncio.Redis.from_url(redis_url, driver_info=None)  # sends no SETINFO
        blocked = 0
        while not blocked:  # until the followers wait, then a moment longer for stragglers
            await asyncio.sleep(0.1)
            blocked = await blocked_in_xread(observer)
        await asyncio.sleep(0.1)
        blocked = await blocked_in_xread(observer)
        await event_log.append(reply_id, "delta", {"text": "all"})
        await event_log.close(reply_id, "done", {})
        await observer.aclose()
        return await asyncio.gather(*readers), blocked

    received, blocked = asyncio.run(scenario())
    assert blocked == 1
    assert len(received) == followers
    assert all(b'"text":"all"' in frames and b"event: done" in frames for frames in received)
    assert lookups == []


def test_followers_on_another_process_joining_at_different_points_miss_nothing(redis_url):
    prefix = f"chatsite-test-{uuid.uuid4().hex}"
    event_log, elsewhere = RedisEventLog(redis_url, prefix), RedisEventLog(redis_url, prefix)
    reply_id = uuid.uuid4()

    async def follow(after: int) -> list[bytes]:
        frames = b""
        async for _, frame in await elsewhere.follow(reply_id, after, idle_seconds=30):
            frames += b"" if frame == HEARTBEAT else frame
        return re.findall(rb"^id: (\d+)$", frames, re.MULTILINE)

    async def scenario() -> list[list[bytes]]:
        await event_log.open(reply_id)
        joined = []
        for n in range(1, 41):  # a follower joins before each event, while the reader reads
            joined.append(asyncio.ensure_future(follow(0 if n % 2 else n // 2)))
            await event_log.append(reply_id, "delta", {"n": n})
        await event_log.close(reply_id, "done", {})
        return await asyncio.gather(*joined)

    received = asyncio.run(scenario())
    everything = [str(n).encode() for n in range(1, 42)]
    for n, ids in enumerate(received, start=1):
        assert ids == everything[0 if n % 2 else n // 2 :], f"follower {n}"


async def blocked_in_xread(observer) -> int:
    """Clients of the test's Redis database waiting in XREAD (other databases' are others')."""
    db = str(observer.connection_pool.connection_kwargs.get("db", 0))
    clients = await observer.client_list()
    return sum(1 for client in clients if client.get("cmd") == "xread" and client["db"] == db)


def test_appends_of_many_replies_at_once_all_reach_redis_in_order(redis_url):
    # Appends travel together in pipelines; a producer stopped mid-append cancels no other's.
    prefix = f"chatsite-test-{uuid.uuid4().hex}"
    event_log = RedisEventLog(redis_url, prefix)
    replies = [uuid.uuid4() for _ in range(40)]

    async def produce(reply_id: uuid.UUID) -> None:
        for n in range(25):
            await event_log.append(reply_id, "delta", {"content": f"{n} "})
        await event_log.close(reply_id, "done", {})

    async def scenario() -> None:
        for reply_id in replies:
            await event_log.open(reply_id)
        stopped = asyncio.ensure_future(event_log.append(replies[0], "delta", {"content": "x"}))
        producers = [asyncio.ensure_future(produce(reply_id)) for reply_id in replies[1:]]
        await asyncio.sleep(0)
        stopped.cancel()
        await asyncio.gather(*producers)

    asyncio.run(scenario())
    store = redis.Redis.from_url(redis_url)
    for reply_id in replies[1:]:
        entries = store.xrange(f"{prefix}:reply:{reply_id}")
        assert [entry_id for entry_id, _ in entries] == [f"0-{n}".encode() for n in range(1, 27)]
        texts = [fields[b"f"].split(b"data: ")[1] for _, fields in entries[:-1]]
        assert texts == [f'{{"content":"{n} "}}\n\n'.encode() for n in range(25)]
        assert b"end" in entries[-1][1]


def test_a_follower_after_all_others_left_still_gets_every_event(redis_url):
    # When the last follower of a reply leaves, its copy is dropped; the next one begins a new
    # copy from the first event, whatever the reader was reading for the old one meanwhile.
    prefix = f"chatsite-test-{uuid.uuid4().hex}"
    event_log, elsewhere = RedisEventLog(redis_url, prefix), RedisEventLog(redis_url, prefix)
    reply_id = uuid.uuid4()
    firsts = []

    async def follow_briefly() -> None:
        frames = await elsewhere.follow(reply_id, 0, idle_seconds=30)
        _, frame = await anext(frames)  # what it has so far, then it leaves
        await frames.aclose()
        firsts.append(re.findall(rb"^id: (\d+)$", frame, re.MULTILINE))

    async def churn(appending: asyncio.Task) -> None:
        while not appending.done():
            await follow_briefly()

    async def scenario() -> None:
        await event_log.open(reply_id)
        await event_log.append(reply_id, "delta", {"n": 1})

        async def append() -> None:
            for n in range(2, 501):
                await event_log.append(reply_id, "delta", {"n": n})

        appending = asyncio.ensure_future(append())
        await asyncio.gather(appending, churn(appending))

    asyncio.run(scenario())
    assert len(firsts) > 10
    for ids in firsts:
        assert ids == [str(n).encode() for n in range(1, len(ids) + 1)]


def test_a_copy_no_one_follows_stops_its_silence_timer():
    # A dropped copy of an unfinished reply never closes: its heartbeat timer must not run on.
    async def scenario() -> tuple[float, float]:
        events = ReplyEvents()
        waiting = asyncio.ensure_future(events.wait(idle_seconds=0.02))
        await asyncio.sleep(0.05)  # heartbeats are due, and re-armed, every 0.02 s
        waiting.cancel()
        events.forget()
        stopped_at = events.quiet_since
        await asyncio.sleep(0.1)
        return stopped_at, events.quiet_since

    stopped_at, later = asyncio.run(scenario())
    assert later == stopped_at


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
