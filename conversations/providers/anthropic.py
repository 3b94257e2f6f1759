"""Anthropic's Messages API (Claude).

The stream is named events: message_start (input usage), content_block_start/delta/stop
(text and thinking), message_delta (stop reason and cumulative usage), message_stop, ping
and error. Event types added later are ignored, as Anthropic asks clients to do.
"""

from collections.abc import AsyncIterator, Iterator

from conversations.providers.base import (
    ChatRequest,
    Finish,
    ProviderError,
    ProviderEvent,
    ReasoningDelta,
    SamplingLimits,
    TextDelta,
    Usage,
    sampling,
)
from conversations.providers.failures import error_for_status, translated_errors
from conversations.providers.http import EventStream, fetch_json, open_stream, parse_json
from conversations.usage import usage_from_input_output

API_VERSION = "2023-06-01"
# Anthropic's stop reasons in the vocabulary every other provider's replies are stored with.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",  # its context window full: cut short too
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# The HTTP status each error type stands for, so in-stream errors read like HTTP ones.
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
    "billing_error": 402,
    "conflict_error": 409,
    "timeout_error": 504,
}


class AnthropicProvider:
    name = "anthropic"
    label = "Anthropic"
    passes_on: frozenset[str] = frozenset()  # not mapped to Anthropic's Messages API
    # The Messages API's range; Claude 4.5 and later refuse temperature with top_p.
    limits = SamplingLimits(max_temperature=1.0, temperature_or_top_p=True)

    def __init__(self, base_url: str, api_key: str, max_tokens: int) -> None:
        self.url = base_url.rstrip("/").removesuffix("/v1") + "/v1/messages"
        self.headers = {"x-api-key": api_key, "anthropic-version": API_VERSION}
        self.secrets = (api_key,)
        self.max_tokens = max_tokens

    def body(self, request: ChatRequest) -> dict:
        body: dict = {
            "model": request.model,
            "max_tokens": request.max_tokens or self.max_tokens,  # required by the API
            "messages": list(request.messages),
            "stream": request.stream,
        }
        if request.system:
            body["system"] = request.system
        body.update(sampling(request.options, stop="stop_sequences"))
        return body

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
        with translated_errors(self.label, self.secrets):
            if not request.stream:
                payload = await fetch_json(self.url, self.body(request), self.headers, self.label)
                for event in self._whole_reply(payload):
                    yield event
                return
            async with open_stream(self.url, self.body(request), self.headers, self.label) as s:
                async for event in self._events(s):
                    yield event

    async def _events(self, stream: EventStream) -> AsyncIterator[ProviderEvent]:
        usage: dict = {}  # latest value of each count: they are totals so far, never added up
        stop_reason = ""
        stopped = False
        async for sse in stream.events():
            data = parse_json(sse.data, self.label)
            kind = data.get("type") or sse.event
            if kind == "message_start":
                usage |= counts((data.get("message") or {}).get("usage"))
            elif kind == "content_block_delta":
                for event in block_delta(data.get("delta") or {}):
                    yield event
            elif kind == "message_delta":
                stop_reason = (data.get("delta") or {}).get("stop_reason") or stop_reason
                usage |= counts(data.get("usage"))
            elif kind == "message_stop":
                stopped = True
                break
            elif kind == "error":
                raise stream_error(data.get("error"), self.label)
            # ping, content_block_start/stop and unknown types carry nothing to show.
        if not (stopped or stop_reason):
            raise ProviderError(
                f"The connection to {self.label} ended before the reply was complete.",
                code="connection_dropped",
            )
        yield Finish(finish_reason(stop_reason or "end_turn"), usage_from(usage))

    def _whole_reply(self, payload: dict) -> Iterator[ProviderEvent]:
        if payload.get("type") == "error":
            raise stream_error(payload.get("error"), self.label)
        blocks = [block for block in payload.get("content") or () if isinstance(block, dict)]
        if reasoning := block_text(blocks, "thinking"):
            yield ReasoningDelta(reasoning)
        if text := block_text(blocks, "text"):
            yield TextDelta(text)
        usage = usage_from(counts(payload.get("usage")))
        yield Finish(finish_reason(payload.get("stop_reason") or "end_turn"), usage)


def block_delta(delta: dict) -> Iterator[ProviderEvent]:
    if delta.get("type") == "text_delta" and delta.get("text"):
        yield TextDelta(delta["text"])
    elif delta.get("type") == "thinking_delta" and delta.get("thinking"):
        yield ReasoningDelta(delta["thinking"])


def block_text(blocks: list[dict], kind: str) -> str:
    """All text of one kind of block: a text block keeps it in "text", thinking in "thinking"."""
    return "".join(block.get(kind, "") for block in blocks if block.get("type") == kind)


def counts(usage: object) -> dict:
    """The counts a usage object reports (a null means "not reported", not zero)."""
    if not isinstance(usage, dict):
        return {}
    return {name: value for name, value in usage.items() if isinstance(value, int)}


def usage_from(usage: dict) -> Usage | None:
    return usage_from_input_output(usage) if usage else None


def finish_reason(stop_reason: str) -> str:
    return FINISH_REASONS.get(stop_reason, stop_reason)


def stream_error(error: object, label: str) -> ProviderError:
    error = error if isinstance(error, dict) else {"message": str(error)}
    kind = str(error.get("type") or "")
    detail = str(error.get("message") or kind or "unknown error")
    return error_for_status(ERROR_STATUS.get(kind, 500), label, detail)
