"""The Redis event log when a reply is stopped mid-append: other processes still get every
event in order, the stopped one included, never a gap after which their reader cannot go on."""

import asyncio
import uuid

import redis.asyncio

from conversations.eventlog_redis import RedisEventLog


def test_an_append_stopped_while_its_batch_fails_is_sent_again_when_the_reply_ends(redis_url):
    prefix = f"chatsite-test-{uuid.uuid4().hex}"
    reply_id = uuid.uuid4()
    key = f"{prefix}:reply:{reply_id}"

    async def scenario() -> list[bytes]:
        direct = redis.asyncio.Redis.from_url(redis_url)
        event_log = RedisEventLog(redis_url, prefix)
        await event_log.open(reply_id)
        await direct.set(key, "not a stream")  # the batch's XADD is refused (WRONGTYPE)
        appending = asyncio.create_task(event_log.append(reply_id, "delta", {"text": "cut"}))
        await asyncio.sleep(0)  # queued, its batch not sent yet
        appending.cancel()  # a Stop cancels the producer's reading
        await asyncio.gather(appending, return_exceptions=True)
        await asyncio.wait_for(event_log._on_loop().appends._sending, 30)  # refused
        await direct.delete(key)  # Redis takes streams again
        await event_log.close(reply_id, "done", {})
        entries = await direct.xrange(key)
        await direct.delete(key, f"{key}:open")
        await direct.aclose()
        return [entry_id for entry_id, _ in entries]

    assert asyncio.run(scenario()) == [b"0-1", b"0-2"]  # the stopped event, then the last
