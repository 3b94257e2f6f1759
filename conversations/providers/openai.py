"""OpenAI-compatible chat completions: OpenAI, DeepSeek, Ollama, vLLM, Qwen compatible mode."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from urllib.parse import urlsplit

from conversations.providers.base import (
    AS_IS_OPTIONS,
    ChatRequest,
    Finish,
    ProviderError,
    ProviderEvent,
    ReasoningDelta,
    SamplingLimits,
    TextDelta,
    Usage,
)
from conversations.providers.characters import content_text
from conversations.providers.failures import translated_errors
from conversations.providers.http import EventStream, fetch_json, open_stream, parse_json
from conversations.providers.sse import ServerSentEvent
from conversations.usage import reasoning_tokens

OPENAI_HOSTS = ("api.openai.com", ".openai.azure.com")

# After a finish reason, how long the server may be silent before the reply counts as ended
# ([DONE] or the end of the response end it at once). It usually sends the usage, then [DONE];
# some send more text (a finish reason on every chunk), some hold the response open.
QUIET_AFTER_FINISH_SECONDS = 10.0


def short_of_capacity(usage: Usage | None, label: str) -> ProviderError:
    """DeepSeek's insufficient_system_resource: the reply cut off, its provider short of
    capacity; worth another try (before the first token only, as every retry)."""
    return ProviderError(
        f"{label} ran short of capacity and cut this reply off"
        " (finish reason: insufficient_system_resource). Try again.",
        code="provider_unavailable",
        retryable=True,
        finish_reason="insufficient_system_resource",
        usage=usage,  # what was generated is billed
    )


# A finish reason that means the reply failed: the ProviderError it makes of the usage.
type FailedFinish = Callable[[Usage | None, str], ProviderError]


class OpenAICompatibleProvider:
    passes_on = frozenset(AS_IS_OPTIONS)
    limits = SamplingLimits()
    # Raised instead of ending the reply as whole; Zhipu adds finish reasons of its own.
    failed_finishes: dict[str, FailedFinish] = {"insufficient_system_resource": short_of_capacity}

    def __init__(
        self, base_url: str, api_key: str, name: str = "openai", label: str = "OpenAI-compatible"
    ) -> None:
        self.name = name
        self.label = label
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.api_key = api_key
        # OpenAI's own API takes max_completion_tokens (its reasoning models no other name:
        # max_tokens is refused there); DeepSeek, Ollama, Qwen and Zhipu know only max_tokens,
        # and ignore the newer name.
        host = urlsplit(base_url).hostname or ""
        self.takes_max_completion_tokens = host.endswith(OPENAI_HOSTS)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values an error message must never show."""
        return (self.api_key,)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def body(self, request: ChatRequest) -> dict:
        messages = list(request.messages)
        if request.system:
            messages.insert(0, {"role": "system", "content": request.system})
        body: dict = {"model": request.model, "messages": messages, "stream": request.stream}
        body.update(request.options)  # OpenAI's own names, as the client gave them
        # The reply's token limit under the one name this server takes; the newer name
        # counts when both are given (as ChatRequest.max_tokens and every provider read it).
        newer, older = body.pop("max_completion_tokens", None), body.pop("max_tokens", None)
        if (limit := newer or older) is not None:
            body["max_completion_tokens" if self.takes_max_completion_tokens else "max_tokens"] = (
                limit
            )
        if request.stream:
            body["stream_options"] = {"include_usage": True}
        return body

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
        with translated_errors(self.label, self.secrets):
            if not request.stream:
                async for event in self._fetch_whole(request):
                    yield event
                return
            body, headers = self.body(request), self.headers()
            async with open_stream(self.url, body, headers, self.label) as stream:
                async for event in self._events(stream):
                    yield event

    async def _events(self, stream: EventStream) -> AsyncIterator[ProviderEvent]:
        if is_whole_completion(stream.whole):
            # A server that ignored "stream": true and answered with the whole completion.
            for event in self._whole_reply(stream.whole):
                yield event
            return
        finish_reason = ""
        usage = None
        async with contextlib.aclosing(stream.events()) as events:
            reads = QuietAfterFinish(events)
            async for sse in reads:
                if sse.data == "[DONE]":
                    break
                chunk = parse_json(sse.data, self.label)
                if chunk.get("error"):
                    raise in_stream_error(chunk["error"], self.label)
                if chunk.get("usage"):
                    usage = usage_from(chunk["usage"])  # the last one counts
                for choice in chunk.get("choices") or ():
                    delta = choice.get("delta") or {}
                    reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                    if reasoning and (reasoning := content_text(reasoning)):
                        yield ReasoningDelta(reasoning)
                    if (content := delta.get("content")) and (content := content_text(content)):
                        yield TextDelta(content)
                    finish_reason = choice.get("finish_reason") or finish_reason
                reads.finished = bool(finish_reason)
            else:
                # Some servers omit [DONE]; a finish reason still means the reply is whole.
                if not finish_reason:
                    raise ProviderError(
                        f"The connection to {self.label} ended before the reply was complete.",
                        code="connection_dropped",
                    )
        yield self._finished(finish_reason or "stop", usage)

    async def _fetch_whole(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
        """For models or gateways that cannot stream: one request, one delta."""
        payload = await fetch_json(self.url, self.body(request), self.headers(), self.label)
        for event in self._whole_reply(payload):
            yield event

    def _whole_reply(self, payload: dict) -> Iterator[ProviderEvent]:
        """A whole completion's events: its first choice's message, as one delta each."""
        if payload.get("error"):
            raise in_stream_error(payload["error"], self.label)
        choice = (payload.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        reasoning = message.get("reasoning_content") or message.get("reasoning")
        if reasoning := content_text(reasoning):
            yield ReasoningDelta(reasoning)
        if content := content_text(message.get("content")):
            yield TextDelta(content)
        usage = usage_from(payload["usage"]) if payload.get("usage") else None
        yield self._finished(choice.get("finish_reason") or "stop", usage)

    def _finished(self, reason: str, usage: Usage | None) -> Finish:
        """The reply's Finish, or the ProviderError of a finish reason that means it failed."""
        if failure := self.failed_finishes.get(reason):
            raise failure(usage, self.label)
        return Finish(reason, usage)


def is_whole_completion(payload: dict | None) -> bool:
    """A chat.completion (its choices carry a message), not one chunk of a stream."""
    choices = payload.get("choices") if payload else None
    first = choices[0] if isinstance(choices, list) and choices else None
    return isinstance(first, dict) and "message" in first


def usage_from(data: dict) -> Usage:
    return Usage(
        prompt_tokens=data.get("prompt_tokens"),
        completion_tokens=data.get("completion_tokens"),
        total_tokens=data.get("total_tokens"),
        reasoning_tokens=reasoning_tokens(data.get("completion_tokens_details")),
    )


def in_stream_error(error: object, label: str) -> ProviderError:
    if isinstance(error, dict):
        detail = str(error.get("message") or error.get("code") or "unknown error")
    else:
        detail = str(error)
    return ProviderError(f"{label} reported an error: {detail}", code="provider_error")


class QuietAfterFinish:
    """A reply's events, which end quietly once `finished` is set and the server has then been
    silent for QUIET_AFTER_FINISH_SECONDS. Each read is timed alone (no timeout spans a yield
    of the generator that reads them)."""

    def __init__(self, events: AsyncIterator[ServerSentEvent]) -> None:
        self.events = events
        self.finished = False

    def __aiter__(self) -> "QuietAfterFinish":
        return self

    async def __anext__(self) -> ServerSentEvent:
        if not self.finished:
            return await anext(self.events)
        try:
            async with asyncio.timeout(QUIET_AFTER_FINISH_SECONDS):
                return await anext(self.events)
        except TimeoutError:
            raise StopAsyncIteration from None
