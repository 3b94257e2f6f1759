"""chatsite's records: conversations and messages (chat.py), and the accounts around them."""

from conversations.models.accounts import AccessRecord, ApiKey, DeletedReplyUsage, UserBudget
from conversations.models.chat import (
    Conversation,
    ConversationQuerySet,
    Message,
    MessageQuerySet,
    ReplyInProgress,
    title_from,
)

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
