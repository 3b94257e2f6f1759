"""The built-in demo model: answers without any key, so a fresh install can be tried at once."""

import asyncio
import re
from collections.abc import AsyncIterator

from django.conf import settings

from conversations.providers.base import (
    AS_IS_OPTIONS,
    ChatRequest,
    Finish,
    ProviderEvent,
    SamplingLimits,
    TextDelta,
)

REPLY = """**This is chatsite's demo model** — no provider key is set, so nothing left this server.

You wrote:

> {quote}

To talk to a real model, set `OPENAI_BASE_URL` and `OPENAI_API_KEY` (or another provider's key)
and restart. Meanwhile, here is what a reply can hold:

| Feature | Shown as |
| --- | --- |
| Markdown | rendered, sanitised |
| Code | highlighted |

```python
def greet(name: str) -> str:
    return f"Hello, {{name}}!"
```
"""


class DemoProvider:
    name = "demo"
    label = "Demo"
    secrets: tuple[str, ...] = ()
    passes_on = frozenset(AS_IS_OPTIONS)  # taken, and ignored like every other option
    limits = SamplingLimits()

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
        last = request.messages[-1]["content"] if request.messages else ""
        quote = " ".join(last.split())[:200].replace(">", "&gt;") or "(nothing)"
        text = REPLY.format(quote=quote)
        rate = settings.CHATSITE_DEMO_TOKENS_PER_SECOND
        for token in re.findall(r"\s*\S+|\s+", text):
            if rate:
                await asyncio.sleep(1 / rate)
            yield TextDelta(token)
        # No usage: the relay stores chatsite's estimate, marked as one, from the same prompt
        # every reply is estimated from (the system prompt included).
        yield Finish("stop", None)
