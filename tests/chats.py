"""Conversations written straight to the database, for tests that need stored history, and
the sidebar's titles as a page shows them."""

import re
from datetime import timedelta

from django.utils import timezone

from conversations.models import Conversation


def add_chat(owner, title: str, model: str = "openai:stub-model", **reply: object) -> Conversation:
    """A conversation with one user message and its reply (from the model's provider),
    written straight to the DB."""
    conversation = Conversation.objects.create(owner=owner, title=title, model=model)
    asked = conversation.messages.create(role="user", status="complete", content=f"{title}?")
    provider = model.partition(":")[0]
    fields = {"status": "complete", "content": f"{title}!", "model": model, "provider": provider}
    fields |= reply
    conversation.messages.create(role="assistant", parent=asked, **fields)
    return conversation


def dated_chats(owner, titles: list[str]) -> list[Conversation]:
    """Empty conversations with these titles, the first the newest, each a day older."""
    now = timezone.now()
    return Conversation.objects.bulk_create(
        Conversation(owner=owner, title=title, model="m", updated_at=now - timedelta(days=n))
        for n, title in enumerate(titles)
    )


def sidebar_titles(html: str) -> list[str]:
    """The conversation titles a page's sidebar lists, in order."""
    return re.findall(r'<li data-conversation-id="[^"]+"[^>]*><a [^>]*>([^<]*)</a>', html)
