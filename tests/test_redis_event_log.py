"""The Redis event log itself, two of them in this process standing for two processes: one
reader serves every follower, followers joining at any point miss nothing, appends of many
replies reach Redis in order."""

import asyncio
import importlib.metadata
import re
import urllib.parse
import uuid

import redis
import redis.asyncio

from conversations.eventlog import HEARTBEAT, ReplyEvents
from conversations.eventlog_redis import OPEN_TTL_SECONDS, RedisEventLog


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


class AnswerLosingProxy:
    """A loopback proxy to Redis that, once told to, passes the next XADDs on to Redis but cuts
    the client's connection before Redis's answer reaches it (a connection lost mid-command)."""

    def __init__(self, redis_url: str) -> None:
        self.target = urllib.parse.urlsplit(redis_url)
        self.lose_next_answer = False

    async def start(self) -> str:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        return self.target._replace(netloc=f"127.0.0.1:{port}").geturl()

    async def _handle(self, client_in, client_out) -> None:
        redis_in, redis_out = await asyncio.open_connection(self.target.hostname, self.target.port)
        answers = asyncio.ensure_future(self._pass(redis_in, client_out))
        while data := await client_in.read(65536):
            redis_out.write(data)
            await redis_out.drain()
            if self.lose_next_answer and b"XADD" in data:
                self.lose_next_answer = False
                answers.cancel()
                await redis_in.read(65536)  # Redis has applied them; its answer goes nowhere
                client_out.transport.abort()
                break
        redis_out.close()

    async def _pass(self, source, destination) -> None:
        while data := await source.read(65536):
            destination.write(data)
            await destination.drain()


def test_appends_redis_stored_before_the_answer_was_lost_still_reach_other_processes(redis_url):
    # redis-py sends the pipeline again on a new connection; Redis refuses the entries it has.
    prefix = f"chatsite-test-{uuid.uuid4().hex}"
    reply_id = uuid.uuid4()
    key = f"{prefix}:reply:{reply_id}"

    async def scenario() -> list[bytes]:
        proxy = AnswerLosingProxy(redis_url)
        event_log = RedisEventLog(await proxy.start(), prefix)
        await event_log.open(reply_id)
        proxy.lose_next_answer = True
        await event_log.append(reply_id, "delta", {"text": "lost answer"})
        await event_log.append(reply_id, "delta", {"text": "next"})
        direct = redis.asyncio.Redis.from_url(redis_url)
        entries = await direct.xrange(key)  # before the reply ends: what others can read now
        await event_log.close(reply_id, "done", {})
        await direct.delete(key, f"{key}:open")
        await direct.aclose()
        return [fields[b"f"] for _, fields in entries]

    frames = asyncio.run(scenario())
    assert len(frames) == 2 and b"lost answer" in frames[0] and b"next" in frames[1]


def test_the_reader_can_still_be_woken_after_its_connection_drops(redis_url):
    # A new reply to follow wakes the reader's blocked XREAD by its connection's id.
    prefix = f"chatsite-test-{uuid.uuid4().hex}"
    event_log, elsewhere = RedisEventLog(redis_url, prefix), RedisEventLog(redis_url, prefix)
    reply_id = uuid.uuid4()

    async def scenario() -> bool:
        await event_log.open(reply_id)
        follower = asyncio.ensure_future(read_to_the_end(elsewhere, reply_id))
        reads = elsewhere._on_loop().reads
        direct = redis.asyncio.Redis.from_url(redis_url)
        for _ in range(200):  # a wait for the reader to start
            if reads._reader_id is not None:
                break
            await asyncio.sleep(0.01)
        await direct.client_kill_filter(_id=reads._reader_id)
        woken = False
        for _ in range(200):  # a wait for it to connect again, not a timing check
            await asyncio.sleep(0.05)
            if woken := bool(reads._reader_id and await direct.client_unblock(reads._reader_id)):
                break
        await event_log.close(reply_id, "done", {})
        await follower
        await direct.aclose()
        return woken

    assert asyncio.run(scenario())


async def read_to_the_end(event_log: RedisEventLog, reply_id: uuid.UUID) -> bytes:
    received = b""
    async for _, frame in await event_log.follow(reply_id, 0, idle_seconds=30):
        received += frame
    return received


def test_a_reply_never_closed_does_not_stay_in_redis_for_good(redis_url):
    # A process killed or stopped mid-reply never closes its log: the stream expires anyway.
    prefix = f"chatsite-test-{uuid.uuid4().hex}"
    event_log, reply_id = RedisEventLog(redis_url, prefix), uuid.uuid4()

    async def scenario() -> None:
        await event_log.open(reply_id)
        await event_log.append(reply_id, "delta", {"content": "Half"})
        await event_log.append(reply_id, "delta", {"content": " a reply"})

    asyncio.run(scenario())
    key = f"{prefix}:reply:{reply_id}"
    with redis.Redis.from_url(redis_url) as client:
        assert client.xlen(key) == 2
        assert 0 < client.ttl(key) <= OPEN_TTL_SECONDS
        client.delete(key, f"{key}:open")


def test_a_follower_leaving_while_its_copy_is_set_up_leaves_nothing_behind(redis_url):
    # The first follower of a reply wakes the reader (a round trip to Redis); one that leaves
    # meanwhile must not leave the reply in every XREAD for good.
    prefix = f"chatsite-test-{uuid.uuid4().hex}"
    event_log, elsewhere = RedisEventLog(redis_url, prefix), RedisEventLog(redis_url, prefix)
    kept, left = uuid.uuid4(), uuid.uuid4()

    async def follow(reply_id: uuid.UUID) -> None:
        async for _ in await elsewhere.follow(reply_id, 0, idle_seconds=30):
            pass

    async def scenario() -> dict:
        await event_log.open(kept)
        await event_log.open(left)
        reads = elsewhere._on_loop().reads
        keeper = asyncio.ensure_future(follow(kept))  # the reader runs for this one
        while reads._reader_id is None:  # noqa: ASYNC110 (polled: set by the reader)
            await asyncio.sleep(0.01)
        leaving = asyncio.ensure_future(follow(left))
        while f"{prefix}:reply:{left}" not in reads._replies:  # noqa: ASYNC110
            await asyncio.sleep(0)  # its first step: the copy made, the wake-up on its way
        leaving.cancel()
        await asyncio.gather(leaving, return_exceptions=True)
        unfinished = reads._unfinished()
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
        return unfinished

    assert list(asyncio.run(scenario())) == [f"{prefix}:reply:{kept}"]
