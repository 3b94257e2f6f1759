"""A reply's event log, re-framed as OpenAI's chat completion chunks, and the whole completion.

The stream view's frames are `id: …\\nevent: …\\ndata: {"content": …}\\n\\n`, encoded once
when the producer appended them. A delta's JSON is spliced into a chunk as it is, between
bytes made once per response: no token is decoded or encoded again here.
"""

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

import orjson

from conversations.api.openai_compat.errors import DELETED, stopped_error, streamed_error
from conversations.api.serializers import message_data
from conversations.eventlog import HEARTBEAT
from conversations.models import Message

DONE = b"data: [DONE]\n\n"
CONTENT_KEY = b'{"content":'
CHUNK_END = b',"finish_reason":null}]}\n\n'


def completion_id(reply: Message) -> str:
    return f"chatcmpl-{reply.pk.hex}"


class ChunkWriter:
    """One streamed completion's chunks: the fixed part of each, written once."""

    def __init__(self, reply: Message, include_usage: bool) -> None:
        self.include_usage = include_usage
        self.fields = {
            "id": completion_id(reply),
            "object": "chat.completion.chunk",
            "created": int(reply.created_at.timestamp()),
            "model": reply.model,
        }
        self.delta_start = b"data: " + orjson.dumps(self.fields)[:-1] + b',"choices":[{"index":0,'

    def first(self) -> bytes:
        return self.delta_start + b'"delta":{"role":"assistant","content":""}' + CHUNK_END

    def delta(self, data: bytes) -> bytes:
        return self.delta_start + b'"delta":' + data + CHUNK_END

    def reasoning(self, data: bytes) -> bytes:
        # DeepSeek's field name, which OpenAI-compatible clients read for reasoning text.
        text = data[len(CONTENT_KEY) :]  # the JSON string after {"content":
        return self.delta_start + b'"delta":{"reasoning_content":' + text + CHUNK_END

    def done(self, message: dict | None) -> bytes:
        if message is None:  # deleted with its conversation before it was stored
            return self.error({"code": "not_found", "message": DELETED})
        if message["status"] == Message.Status.INTERRUPTED:  # cut short: no whole completion
            return self.error({"code": message["error_code"], "message": message["error"]})
        if message["status"] == Message.Status.STOPPED:  # nor stopped by another than its client
            return self.error(stopped_error(message["error_code"], message["error"]))
        choice = {"index": 0, "delta": {}, "finish_reason": message["finish_reason"] or "stop"}
        frames = [sse({**self.fields, "choices": [choice]})]
        if self.include_usage:
            frames.append(sse({**self.fields, "choices": [], "usage": usage_of(message)}))
        return b"".join([*frames, DONE])

    def of(self, frame: bytes) -> bytes:
        """The chunks for one of the reply's SSE frames (nothing for a retry hint)."""
        name, data = event_of(frame)
        if name == b"delta":
            return self.delta(data)
        if name == b"reasoning":
            return self.reasoning(data)
        if name == b"done":
            return self.done(orjson.loads(data)["message"])
        if name == b"error":
            return self.error(orjson.loads(data)["error"])
        if frame + b"\n\n" == HEARTBEAT:
            return HEARTBEAT  # a comment line: clients skip it, proxies see traffic
        return b""

    def error(self, error: dict) -> bytes:
        # As OpenAI streams an error: a data line with "error" (its SDKs raise it), no [DONE].
        return sse({"error": streamed_error(error)})


async def completion_chunks(
    writer: ChunkWriter, frames: AsyncGenerator[bytes]
) -> AsyncIterator[bytes]:
    """The reply's stream (stream.reply_events' frames) as OpenAI chunks, ending with [DONE]."""
    yield writer.first()
    # Closed with this response, as the client leaves: its event log follower goes at once.
    async with contextlib.aclosing(frames):
        async for batch in frames:
            if out := [chunk for frame in batch.split(b"\n\n") if (chunk := writer.of(frame))]:
                yield b"".join(out)


def event_of(frame: bytes) -> tuple[bytes, bytes]:
    """An SSE frame's event name and data (empty for a comment, retry hint or blank)."""
    name = data = b""
    for line in frame.split(b"\n"):
        if line.startswith(b"event: "):
            name = line[7:]
        elif line.startswith(b"data: "):
            data = line[6:]
    return name, data


def completion(reply: Message) -> dict:
    """A finished reply as a whole chat completion (the answer when `stream` is false)."""
    message: dict = {"role": "assistant", "content": reply.content}
    if reply.reasoning:
        message["reasoning_content"] = reply.reasoning
    return {
        "id": completion_id(reply),
        "object": "chat.completion",
        "created": int(reply.created_at.timestamp()),
        "model": reply.model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": reply.finish_reason or "stop"}
        ],
        "usage": usage_of(message_data(reply)),
    }


def usage_of(message: dict) -> dict:
    """OpenAI's usage object from a message as the API shows it (message_data)."""
    return {
        "prompt_tokens": message["prompt_tokens"] or 0,
        "completion_tokens": message["completion_tokens"] or 0,
        "total_tokens": message["total_tokens"] or 0,
        "completion_tokens_details": {"reasoning_tokens": message["reasoning_tokens"] or 0},
    }


def sse(payload: dict) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"
