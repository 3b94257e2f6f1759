"""The one small interface every provider speaks, and the one error type they raise.

A provider turns a ChatRequest into an async stream of TextDelta / ReasoningDelta events that
ends with exactly one Finish (finish reason and usage). Anything that goes wrong becomes a
ProviderError whose message a user can read and which never contains a key.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(slots=True)
class ChatRequest:
    model: str  # the provider's own model name, e.g. "gpt-4o-mini"
    messages: list[dict[str, str]]  # [{"role": "user" | "assistant", "content": "..."}]
    system: str = ""
    stream: bool = True
    # Sampling options in OpenAI's names (temperature, top_p, max_tokens or
    # max_completion_tokens, stop as a list); each provider maps them to its own.
    options: dict = field(default_factory=dict)

    @property
    def max_tokens(self) -> int | None:
        return self.options.get("max_completion_tokens") or self.options.get("max_tokens")


# OpenAI's options that only OpenAI's protocol has, taken as they are by the providers that
# speak it (Provider.passes_on); for the others the endpoint refuses them instead.
AS_IS_OPTIONS = (
    "seed", "presence_penalty", "frequency_penalty", "response_format", "logit_bias",
    "reasoning_effort",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SamplingLimits:
    """What a provider's API takes of OpenAI's sampling options, where it takes less."""

    max_temperature: float = 2.0  # OpenAI's
    temperature_or_top_p: bool = False  # True: one of them, not both (newer Claude models)

    def refusals(self, options: dict, label: str) -> dict[str, list[str]]:
        """For each option set beyond these limits, why (the /v1 endpoint's 400)."""
        refused = {}
        temperature = options.get("temperature")
        if temperature is not None and temperature > self.max_temperature:
            refused["temperature"] = [f"{label} takes 0 to {self.max_temperature:g}."]
        both = temperature is not None and options.get("top_p") is not None
        if self.temperature_or_top_p and both:
            refused["top_p"] = [f"{label} takes temperature or top_p, not both."]
        return refused


def sampling(options: dict, stop: str) -> dict:
    """temperature, top_p and the stop sequences (under the provider's name) that were set."""
    chosen = {name: options[name] for name in ("temperature", "top_p") if name in options}
    if options.get("stop"):
        chosen[stop] = options["stop"]
    return chosen


# The largest count every database's integer column holds (PostgreSQL's integer).
MAX_TOKEN_COUNT = 2**31 - 1


def token_count(value: object) -> int | None:
    """A provider's token count (12, or 12.0), or None for what is none (a string, a fraction,
    a negative, a count no column holds): odd usage must not keep a reply from being stored."""
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is int and 0 <= value <= MAX_TOKEN_COUNT:
        return value
    return None


@dataclass(slots=True)
class Usage:
    """Token counts as a provider reported them; anything that is not a count becomes None."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    reasoning_tokens: int | None = None

    def __post_init__(self) -> None:
        self.prompt_tokens = token_count(self.prompt_tokens)
        self.completion_tokens = token_count(self.completion_tokens)
        self.total_tokens = token_count(self.total_tokens)
        self.reasoning_tokens = token_count(self.reasoning_tokens)

    @property
    def is_complete(self) -> bool:
        return self.prompt_tokens is not None and self.completion_tokens is not None


@dataclass(slots=True)
class TextDelta:
    text: str


@dataclass(slots=True)
class ReasoningDelta:
    text: str


@dataclass(slots=True)
class Finish:
    finish_reason: str
    usage: Usage | None = None


ProviderEvent = TextDelta | ReasoningDelta | Finish


class ProviderError(Exception):
    """Any provider failure, with a message fit for the user.

    `retryable` marks failures that may succeed if tried again before the first token
    (connection errors, 429, 5xx); `retry_after` is the provider's own hint in seconds.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "provider_error",
        retryable: bool = False,
        retry_after: float | None = None,
        status: int | None = None,
        finish_reason: str = "",
        usage: Usage | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status
        self.finish_reason = finish_reason  # the provider's own, when it ended the reply itself
        self.usage = usage  # what the provider counted, when it ended the reply itself


class Provider(Protocol):
    name: str  # "openai", "dashscope", ...
    label: str  # shown to people, e.g. "OpenAI-compatible"
    secrets: tuple[str, ...]  # values that must never appear in an error message
    passes_on: frozenset[str]  # which AS_IS_OPTIONS it sends on to its API unchanged
    limits: SamplingLimits  # of OpenAI's sampling options, what its API takes

    def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]: ...


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """A model as people and the API name it: `provider:name`, e.g. `openai:gpt-4o-mini`."""

    provider: str
    name: str
    label: str
    is_default: bool = False
    stream: bool = True
    options: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def id(self) -> str:
        return f"{self.provider}:{self.name}"
