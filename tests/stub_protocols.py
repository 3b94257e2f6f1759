"""Each provider protocol's real wire bytes, for the provider stub to send.

The shapes follow each provider's documentation: DashScope's native SSE frames (`id:N`,
`event:result`, `:HTTP_STATUS/200`, `data:{...}` with no space after the colon, a finish
reason that is the string "null" until the end, cumulative usage in every frame), Zhipu's v4
chunks (usage and finish reason in the last one, then `data: [DONE]`), and Anthropic's named
events (message_start … message_stop, with ping and error). OpenAI's are in stub.py.
"""

import json

from tests.stub import Script


def compact(payload: object) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def json_reply(payload: dict, status: int = 200, headers: dict | None = None) -> Script:
    """A plain JSON response: an HTTP error, or a reply fetched without streaming."""
    headers = {"Content-Type": "application/json", **(headers or {})}
    return Script(status=status, headers=headers, steps=[compact(payload).encode()])


def prompt_completion(prompt: int, completion: int) -> dict:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


# --- DashScope native ---------------------------------------------------------------------
DASHSCOPE_REQUEST_ID = "5bd8d7f5-6b1c-9d3e-a0c8-0c3ba1a2e7d1"


def dashscope_frame(number: int, payload: dict, event: str = "result", status: int = 200) -> bytes:
    return (
        f"id:{number}\nevent:{event}\n:HTTP_STATUS/{status}\ndata:{compact(payload)}\n\n".encode()
    )


def dashscope_result(
    content: str,
    finish_reason: str,
    prompt: int,
    completion: int,
    reasoning: str | None = None,
    reasoning_tokens: int | None = None,
) -> dict:
    message: dict = {"content": content, "role": "assistant"}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    usage: dict = {
        "total_tokens": prompt + completion,
        "output_tokens": completion,
        "input_tokens": prompt,
    }
    if reasoning_tokens is not None:
        usage["output_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
    return {
        "output": {"choices": [{"message": message, "finish_reason": finish_reason}]},
        "usage": usage,
        "request_id": DASHSCOPE_REQUEST_ID,
    }


def dashscope_stream(
    pieces: list[str],
    usage: tuple[int, int] = (20, 9),
    cumulative: bool = False,
    reasoning: list[str] = (),
    finish_reason: str = "stop",
) -> Script:
    """Reasoning frames, then text frames, then the finishing frame with empty content.

    Usage grows frame by frame up to `usage` in the last one: cumulative, as DashScope sends it.
    With `cumulative`, every frame carries the whole text so far (incremental_output off).
    """
    prompt, completion = usage
    frames: list[dict] = []
    thought = text = ""
    for piece in reasoning:
        thought += piece
        frames.append({"content": "", "reasoning": thought if cumulative else piece})
    for piece in pieces:
        text += piece
        frames.append({"content": text if cumulative else piece})
    steps = []
    for number, frame in enumerate(frames, start=1):
        so_far = min(number, completion - 1)
        payload = dashscope_result(
            frame["content"], "null", prompt, so_far, reasoning=frame.get("reasoning")
        )
        steps.append(dashscope_frame(number, payload))
    last = dashscope_result(
        text if cumulative else "",
        finish_reason,
        prompt,
        completion,
        reasoning=(thought if cumulative else "") if reasoning else None,
        reasoning_tokens=len(reasoning) if reasoning else None,
    )
    steps.append(dashscope_frame(len(frames) + 1, last))
    return Script(headers={"Content-Type": "text/event-stream;charset=UTF-8"}, steps=steps)


def dashscope_error_frame(number: int, code: str, message: str, status: int = 400) -> bytes:
    payload = {"code": code, "message": message, "request_id": DASHSCOPE_REQUEST_ID}
    return dashscope_frame(number, payload, event="error", status=status)


def dashscope_http_error(
    status: int, code: str, message: str, headers: dict | None = None
) -> Script:
    body = {"code": code, "message": message, "request_id": DASHSCOPE_REQUEST_ID}
    return json_reply(body, status, headers)


def dashscope_whole(text: str, usage: tuple[int, int] = (20, 9)) -> Script:
    """The reply to a request without X-DashScope-SSE: one JSON object."""
    return json_reply(dashscope_result(text, "stop", *usage))


# --- Zhipu GLM v4 -------------------------------------------------------------------------
ZHIPU_ID = {"id": "20250101123456a1b2c3d4e5f6", "created": 1735705800, "model": "glm-4-flash"}


def zhipu_chunk(
    content: str = "",
    finish_reason: str | None = None,
    usage: tuple[int, int] | None = None,
    reasoning: str | None = None,
) -> bytes:
    delta: dict = {"role": "assistant", "content": content}
    if reasoning is not None:
        delta["reasoning_content"] = reasoning
    choice: dict = {"index": 0, "delta": delta}
    if finish_reason:
        choice["finish_reason"] = finish_reason
    chunk: dict = {**ZHIPU_ID, "choices": [choice]}
    if usage:
        chunk["usage"] = prompt_completion(*usage)
    return f"data: {compact(chunk)}\n\n".encode()


def zhipu_stream(
    tokens: list[str],
    usage: tuple[int, int] | None = (16, 6),
    finish_reason: str = "stop",
    reasoning: list[str] = (),
) -> Script:
    steps = [zhipu_chunk(reasoning=piece) for piece in reasoning]
    steps += [zhipu_chunk(token) for token in tokens]
    steps.append(zhipu_chunk("", finish_reason=finish_reason, usage=usage))
    steps.append(b"data: [DONE]\n\n")
    return Script(steps=steps)


def zhipu_http_error(status: int, code: str, message: str, headers: dict | None = None) -> Script:
    return json_reply({"error": {"code": code, "message": message}}, status, headers)


def zhipu_whole(text: str, usage: tuple[int, int] = (16, 6), finish_reason: str = "stop") -> Script:
    message = {"role": "assistant", "content": text}
    choice = {"index": 0, "finish_reason": finish_reason, "message": message}
    return json_reply({**ZHIPU_ID, "choices": [choice], "usage": prompt_completion(*usage)})


# --- Anthropic Messages -------------------------------------------------------------------
def anthropic_event(name: str, payload: dict) -> bytes:
    return f"event: {name}\ndata: {compact({'type': name, **payload})}\n\n".encode()


def anthropic_message(content: list, stop_reason: str | None, usage: dict) -> dict:
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "content": content,
        "model": "claude-sonnet-4-5",
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }


def anthropic_start(input_tokens: int, output_tokens: int = 1) -> bytes:
    usage = {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    }
    return anthropic_event("message_start", {"message": anthropic_message([], None, usage)})


def anthropic_block(index: int, kind: str, pieces: list[str]) -> list[bytes]:
    """One content block: start, its deltas, stop. `kind` is "text" or "thinking"."""
    field = kind  # the text is in "text" for text blocks and in "thinking" for thinking blocks
    deltas = [{"type": f"{kind}_delta", field: piece} for piece in pieces]
    if kind == "thinking":
        deltas.append({"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"})
    start = {"index": index, "content_block": {"type": kind, field: ""}}
    return [
        anthropic_event("content_block_start", start),
        *(anthropic_event("content_block_delta", {"index": index, "delta": d}) for d in deltas),
        anthropic_event("content_block_stop", {"index": index}),
    ]


def anthropic_end(output_tokens: int, stop_reason: str = "end_turn") -> list[bytes]:
    delta = {"delta": {"stop_reason": stop_reason, "stop_sequence": None}}
    return [
        anthropic_event("message_delta", {**delta, "usage": {"output_tokens": output_tokens}}),
        anthropic_event("message_stop", {}),
    ]


PING = anthropic_event("ping", {})
UNKNOWN_EVENT = anthropic_event("content_block_flourish", {"index": 0, "sparkle": True})


def anthropic_stream(
    tokens: list[str],
    usage: tuple[int, int] = (25, 15),
    thinking: list[str] = (),
    stop_reason: str = "end_turn",
) -> Script:
    """As Anthropic sends it: message_start (input usage, output 1), a ping, the blocks, an
    event type this client has never heard of, then message_delta with the final output."""
    prompt, completion = usage
    steps = [anthropic_start(prompt), PING]
    if thinking:
        steps += anthropic_block(0, "thinking", thinking)
    steps += anthropic_block(1 if thinking else 0, "text", tokens)
    steps.append(UNKNOWN_EVENT)
    steps += anthropic_end(completion, stop_reason)
    return Script(steps=steps)


def anthropic_error_event(kind: str, message: str) -> bytes:
    return anthropic_event("error", {"error": {"type": kind, "message": message}})


def anthropic_http_error(
    status: int, kind: str, message: str, headers: dict | None = None
) -> Script:
    return json_reply(
        {"type": "error", "error": {"type": kind, "message": message}}, status, headers
    )


def anthropic_whole(text: str, usage: tuple[int, int] = (25, 15)) -> Script:
    counts = {"input_tokens": usage[0], "output_tokens": usage[1]}
    return json_reply(anthropic_message([{"type": "text", "text": text}], "end_turn", counts))
