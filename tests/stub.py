"""What the provider stub (stub_server.py) sends: scripted responses, and OpenAI's wire bytes.

Tests queue scripted responses (status, headers, body chunks, pauses, gates, a dropped
connection); each request takes the next one. The other protocols' bytes are in
stub_protocols.py.
"""

import json
import threading
from dataclasses import dataclass, field

DEFAULT_WAIT = 30.0


class Gate:
    """A point the stub's response waits at until the test opens it."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reached = threading.Event()

    def open(self) -> None:
        self._event.set()

    def wait_reached(self, timeout: float = DEFAULT_WAIT) -> None:
        if not self.reached.wait(timeout):
            raise AssertionError("the stub never reached this gate")


@dataclass
class Script:
    """One scripted response. Steps are bytes (written as one chunk), floats (pause in
    seconds), Gates (wait for the test), or the string "drop" (cut the connection)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/event-stream"})
    steps: list = field(default_factory=list)


# --- OpenAI-compatible wire bytes ----------------------------------------------------
def sse(payload: object) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


def openai_chunk(
    content: str | None = None,
    finish_reason: str | None = None,
    reasoning: str | None = None,
    reasoning_field: str = "reasoning_content",
) -> bytes:
    delta: dict = {}
    if content is not None:
        delta["content"] = content
    if reasoning is not None:
        delta[reasoning_field] = reasoning
    return sse(
        {
            "id": "chatcmpl-stub",
            "object": "chat.completion.chunk",
            "model": "stub-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            "usage": None,
        }
    )


def openai_usage(prompt: int, completion: int) -> bytes:
    return sse(
        {
            "id": "chatcmpl-stub",
            "object": "chat.completion.chunk",
            "model": "stub-model",
            "choices": [],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
    )


def openai_stream(
    tokens: list[str],
    usage: tuple[int, int] | None = (11, 7),
    pause: float = 0.0,
    finish_reason: str = "stop",
    reasoning: list[str] = (),
) -> Script:
    """A complete streamed reply, as OpenAI sends it with include_usage; `reasoning` comes
    first, as reasoning_content."""
    steps: list = [openai_chunk("")]  # the role chunk: {"role": "assistant", "content": ""}
    steps += [openai_chunk(reasoning=text) for text in reasoning]
    for token in tokens:
        if pause:
            steps.append(pause)
        steps.append(openai_chunk(token))
    steps.append(openai_chunk(finish_reason=finish_reason))
    if usage:
        steps.append(openai_usage(*usage))
    steps.append(sse("[DONE]"))
    return Script(steps=steps)


def gated_stream(
    before: list[str],
    gate: Gate,
    after: list[str] | None = None,
    usage: tuple[int, int] | None = (11, 7),
) -> Script:
    """A reply that streams `before`, waits at `gate`, then streams `after` and ends as
    openai_stream does. Without `after` it never ends: a reply still generating (the stub
    opens every gate when the test is over, and the reply then fails as cut short)."""
    whole = openai_stream(before + (after or []), usage).steps
    steps = [*whole[: 1 + len(before)], gate]  # the role chunk, then `before`
    if after is not None:
        steps += whole[1 + len(before) :]
    return Script(steps=steps)


def json_error(status: int, message: str, headers: dict | None = None) -> Script:
    body = json.dumps({"error": {"message": message, "type": "stub_error", "code": None}})
    return Script(
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
        steps=[body.encode()],
    )


def default_script() -> Script:
    return openai_stream(["Hello", " from", " the", " stub."])
