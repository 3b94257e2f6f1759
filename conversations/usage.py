"""Token estimates, used when a provider sends no usage (stopped, cut off, or never reported).

No tokenizer matches every provider, and tiktoken needs its encodings from the network, so
chatsite estimates about four characters a token, one for each Chinese, Japanese or Korean
character (the providers' tokenizers take one to one and a half of those a token, so four would
count a fourth of it), and marks such counts `estimated`.
"""

import re

from conversations.providers.base import Usage, token_count

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4  # role and separators around each message
# Hangul Jamo; CJK radicals to Yi (kana, ideographs); Hangul syllables; compatibility
# ideographs and forms; full-width forms; the supplementary ideographs.
WIDE_CHARACTER = re.compile(
    "[\u1100-\u11ff\u2e80-\ua4cf\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f"
    "\uff00-\uffef\U00020000-\U0003fffd]"
)


def estimate_tokens(*texts: str) -> int:
    total = 0
    for text in texts:
        wide = 0 if text.isascii() else len(WIDE_CHARACTER.findall(text))
        total += wide + -(-(len(text) - wide) // CHARS_PER_TOKEN)
    return total


def estimated_usage(prompt_texts: list[str], reply_texts: list[str]) -> Usage:
    prompt = estimate_tokens(*prompt_texts) + TOKENS_PER_MESSAGE * len(prompt_texts)
    completion = estimate_tokens(*reply_texts)
    return Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def complete_usage(
    usage: Usage | None, prompt_texts: list[str], reply_texts: list[str]
) -> tuple[Usage, str]:
    """The provider's usage when it sent all of it, else an estimate; and which one it is."""
    if usage is not None and usage.is_complete:
        if usage.total_tokens is None:
            usage.total_tokens = token_count(usage.prompt_tokens + usage.completion_tokens)
        return usage, "provider"
    estimate = estimated_usage(prompt_texts, reply_texts)
    if usage is not None and usage.reasoning_tokens is not None:
        estimate.reasoning_tokens = usage.reasoning_tokens
    return estimate, "estimated"


def usage_from_input_output(data: dict) -> Usage:
    """Usage named input/output tokens (DashScope, Anthropic), as prompt/completion counts.

    Anthropic counts cache reads and writes apart from `input_tokens`; all of it was prompt.
    """
    prompt = token_count(data.get("input_tokens"))
    if prompt is not None:
        prompt += (token_count(data.get("cache_creation_input_tokens")) or 0) + (
            token_count(data.get("cache_read_input_tokens")) or 0
        )
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=data.get("output_tokens"),
        total_tokens=data.get("total_tokens"),
        reasoning_tokens=reasoning_tokens(data.get("output_tokens_details")),
    )


def reasoning_tokens(details: object) -> object:
    """The reasoning count in a usage object's details, if they are an object at all."""
    return details.get("reasoning_tokens") if isinstance(details, dict) else None
