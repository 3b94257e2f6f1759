"""chatsite's records: conversations (conversation.py) and their messages (message.py), and
the accounts around them (accounts.py)."""

from conversations.models.accounts import AccessRecord, ApiKey, DeletedReplyUsage, UserBudget
from conversations.models.conversation import (
    ClientIdReused,
    Conversation,
    ConversationQuerySet,
    ReplyInProgress,
    title_from,
)
from conversations.models.message import ChosenReply, Message, MessageQuerySet

__all__ = [
    "AccessRecord",
    "ApiKey",
    "ChosenReply",
    "ClientIdReused",
    "Conversation",
    "ConversationQuerySet",
    "DeletedReplyUsage",
    "Message",
    "MessageQuerySet",
    "ReplyInProgress",
    "UserBudget",
    "title_from",
]
