"""Conversations written straight to the database, for tests that need stored history."""

from conversations.models import Conversation


def add_chat(owner, title: str, model: str = "openai:stub-model", **reply: object) -> Conversation:
    """A conversation with one user message and its reply, written straight to the DB."""
    conversation = Conversation.objects.create(owner=owner, title=title, model=model)
    asked = conversation.messages.create(role="user", status="complete", content=f"{title}?")
    fields = {"status": "complete", "content": f"{title}!", "model": model, **reply}
    conversation.messages.create(role="assistant", parent=asked, **fields)
    return conversation
