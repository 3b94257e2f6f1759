"""Zhipu GLM (open.bigmodel.cn v4): OpenAI's chat-completions stream with Zhipu's own
authentication and two extra finish reasons.

Usage and the finish reason arrive in the last chunk. `sensitive` (the safety review stopped
the reply) and `network_error` (inference failed) end the reply as failed, with a message.
A key of the form `id.secret` is sent as a short-lived HS256 JWT, as Zhipu's SDK does.
"""

import time
import warnings
from collections.abc import AsyncIterator

import jwt

from conversations.providers.base import (
    ChatRequest,
    ProviderError,
    ProviderEvent,
    SamplingLimits,
    Usage,
)
from conversations.providers.openai import OpenAICompatibleProvider

TOKEN_SECONDS = 180  # how long a token is valid, as in Zhipu's own SDK
RENEW_SECONDS_BEFORE_EXPIRY = 30


class ZhipuToken:
    """The Authorization credential for a Zhipu key: the key itself, or a cached JWT."""

    def __init__(self, api_key: str) -> None:
        key_id, _, secret = api_key.partition(".")
        self.api_key = api_key
        self.key_id, self.secret = (key_id, secret) if key_id and secret else ("", "")
        self._token = ""
        self._renew_at = 0.0

    @property
    def signed(self) -> str:
        """The JWT last sent, if any (empty for a plain key)."""
        return self._token

    def current(self) -> str:
        if not self.secret:
            return self.api_key  # a plain key is sent as it is
        now = time.time()
        if not self._token or now >= self._renew_at:
            self._token = self._sign(now)
            self._renew_at = now + TOKEN_SECONDS - RENEW_SECONDS_BEFORE_EXPIRY
        return self._token

    def _sign(self, now: float) -> str:
        now_ms = int(now * 1000)  # Zhipu wants both times in milliseconds
        claims = {"api_key": self.key_id, "exp": now_ms + TOKEN_SECONDS * 1000, "timestamp": now_ms}
        with warnings.catch_warnings():
            # Zhipu issues short secrets; their length is not ours to choose.
            warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
            return jwt.encode(
                claims,
                self.secret,
                algorithm="HS256",
                headers={"sign_type": "SIGN", "typ": None},  # exactly {"alg", "sign_type"}
            )


def content_flagged(usage: Usage | None, label: str) -> ProviderError:
    return ProviderError(
        f"{label}'s safety review stopped this reply (finish reason: sensitive).",
        code="content_filter",
        finish_reason="sensitive",
        usage=usage,  # the tokens were generated, and billed, before the review stopped them
    )


def inference_failed(usage: Usage | None, label: str) -> ProviderError:
    return ProviderError(
        f"{label} failed while generating this reply (finish reason: network_error). Try again.",
        code="provider_unavailable",
        retryable=True,
        finish_reason="network_error",
        usage=usage,
    )


class ZhipuProvider(OpenAICompatibleProvider):
    passes_on: frozenset[str] = frozenset()  # not mapped to Zhipu's API: refused, not sent
    limits = SamplingLimits(max_temperature=1.0)  # Zhipu's range
    failed_finishes = {
        **OpenAICompatibleProvider.failed_finishes,
        "sensitive": content_flagged,
        "network_error": inference_failed,
    }

    def __init__(self, base_url: str, api_key: str) -> None:
        super().__init__(base_url, api_key, name="zhipu", label="Zhipu GLM")
        self.token = ZhipuToken(api_key)

    @property
    def secrets(self) -> tuple[str, ...]:
        # An error may echo the key, its secret half, or the signed token we sent.
        return (self.api_key, self.token.secret, self.token.signed)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token.current()}"}

    def body(self, request: ChatRequest) -> dict:
        body = super().body(request)
        body.pop("stream_options", None)  # not Zhipu's: its last chunk always carries usage
        return body  # max_completion_tokens is sent as max_tokens, as to every other host

    def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
        self.token.current()  # sign now, so the error redaction knows this token
        return super().stream(request)
