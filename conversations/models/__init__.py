"""chatsite's records: conversations (conversation.py) and their messages (message.py), and
the accounts around them (accounts.py)."""

from conversations.models.accounts import AccessRecord, ApiKey, DeletedReplyUsage, UserBudget
from conversations.models.conversation import (
    Conversation,
    ConversationQuerySet,
    ReplyInProgress,
    title_from,
)
from conversations.models.message import Message, MessageQuerySet

__all__ = [
    "AccessRecord",
    "ApiKey",
    "Conversation",
    "ConversationQuerySet",
    "DeletedReplyUsage",
    "Message",
    "MessageQuerySet",
    "ReplyInProgress",
    "UserBudget",
    "title_from",
]
