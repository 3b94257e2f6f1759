"""Alibaba DashScope's native text-generation protocol (Qwen models).

Each SSE frame (`id:N`, `event:result`, `data:{...}`) carries the reply's message so far or
its newest piece, a finish reason that is the string "null" until it is real, and the usage
so far. There is no [DONE]: the frame with a finish reason is the last. Failures are frames
named `error` (or HTTP errors) carrying `code` and `message`.
"""

from collections.abc import AsyncIterator, Iterable, Iterator

from conversations.providers.base import (
    ChatRequest,
    Finish,
    ProviderError,
    ProviderEvent,
    ReasoningDelta,
    SamplingLimits,
    TextDelta,
    sampling,
)
from conversations.providers.characters import content_text
from conversations.providers.failures import content_refused, error_for_status, translated_errors
from conversations.providers.http import EventStream, fetch_json, open_stream, parse_json
from conversations.usage import usage_from_input_output

GENERATION_PATH = "/api/v1/services/aigc/text-generation/generation"
NOT_FINISHED = (None, "", "null")


class DashScopeProvider:
    name = "dashscope"
    label = "DashScope"
    passes_on: frozenset[str] = frozenset()  # not mapped to its native parameters
    limits = SamplingLimits()  # temperature from 0 to 2, as OpenAI's

    def __init__(self, base_url: str, api_key: str, non_incremental: Iterable[str] = ()) -> None:
        # Accept the SDK-style base URL (".../api/v1") as well as the bare host.
        self.url = base_url.rstrip("/").removesuffix("/api/v1") + GENERATION_PATH
        self.api_key = api_key
        self.secrets = (api_key,)
        # Models that must stream with incremental_output off: each frame has the whole text.
        self.non_incremental = frozenset(non_incremental)

    def headers(self, stream: bool) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        if stream:
            headers["X-DashScope-SSE"] = "enable"
        return headers

    def body(self, request: ChatRequest) -> dict:
        messages = list(request.messages)
        if request.system:
            messages.insert(0, {"role": "system", "content": request.system})
        parameters: dict = {"result_format": "message"}
        if request.stream:
            parameters["incremental_output"] = request.model not in self.non_incremental
        parameters.update(sampling(request.options, stop="stop"))
        if request.max_tokens:
            parameters["max_tokens"] = request.max_tokens
        return {"model": request.model, "input": {"messages": messages}, "parameters": parameters}

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
        with translated_errors(self.label, self.secrets):
            body, headers = self.body(request), self.headers(request.stream)
            if not request.stream:
                payload = await fetch_json(self.url, body, headers, self.label)
                for event in self._whole_reply(payload):
                    yield event
                return
            cumulative = request.model in self.non_incremental
            async with open_stream(self.url, body, headers, self.label) as stream:
                async for event in self._events(stream, cumulative):
                    yield event

    async def _events(self, stream: EventStream, cumulative: bool) -> AsyncIterator[ProviderEvent]:
        text, reasoning = NewText(cumulative), NewText(cumulative)
        usage = None
        async for sse in stream.events():
            frame = parse_json(sse.data, self.label)
            if sse.event == "error" or frame.get("code"):
                raise frame_error(frame, self.label)
            if frame.get("usage"):
                usage = usage_from_input_output(
                    frame["usage"]
                )  # the total so far, not an increment
            choice = first_choice(frame)
            message = choice.get("message") or {}
            if piece := reasoning.after(message.get("reasoning_content")):
                yield ReasoningDelta(piece)
            if piece := text.after(content_text(message.get("content"))):
                yield TextDelta(piece)
            if choice.get("finish_reason") not in NOT_FINISHED:
                yield Finish(choice["finish_reason"], usage)
                return
        raise ProviderError(
            f"The connection to {self.label} ended before the reply was complete.",
            code="connection_dropped",
        )

    def _whole_reply(self, payload: dict) -> Iterator[ProviderEvent]:
        """A reply fetched in one request: one reasoning delta, one text delta, the finish."""
        if payload.get("code"):
            raise frame_error(payload, self.label)
        choice = first_choice(payload)
        message = choice.get("message") or {}
        if reasoning := message.get("reasoning_content"):
            yield ReasoningDelta(reasoning)
        if content := content_text(message.get("content")):
            yield TextDelta(content)
        usage = usage_from_input_output(payload["usage"]) if payload.get("usage") else None
        finish_reason = choice.get("finish_reason")
        yield Finish("stop" if finish_reason in NOT_FINISHED else finish_reason, usage)


class NewText:
    """What a frame adds to a text: the frame itself, or, when every frame carries the whole
    text so far (incremental_output off), the part past what was already passed on."""

    def __init__(self, cumulative: bool) -> None:
        self.cumulative = cumulative
        self.length = 0

    def after(self, value: str | None) -> str:
        if not value or not self.cumulative:
            return value or ""
        piece = value[self.length :]
        self.length = max(self.length, len(value))
        return piece


def first_choice(payload: dict) -> dict:
    choices = (payload.get("output") or {}).get("choices") or [{}]
    return choices[0] or {}


def frame_error(frame: dict, label: str) -> ProviderError:
    """DashScope's `code` says what kind of failure it is; map it to the HTTP status it means."""
    code = str(frame.get("code") or "")
    detail = str(frame.get("message") or code or "unknown error")
    if content_refused(code):  # its content inspection: what was written is kept
        return ProviderError(
            f"{label}'s content inspection stopped this reply ({code}): {detail}",
            code="content_filter",
            finish_reason="content_filter",
        )
    return error_for_status(status_for_code(code), label, detail)


def status_for_code(code: str) -> int:
    if code.startswith("Throttling"):
        return 429
    if code.startswith(("InternalError", "SystemError", "ServiceUnavailable")):
        return 500
    if code == "InvalidApiKey":
        return 401
    if code.startswith("AccessDenied"):  # AccessDenied.Unpurchased, and others
        return 403
    return 400
