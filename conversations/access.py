"""Every view's ownership checks: another user's object is simply not found (404). One for
any model, and two on a reply's hot path that spare it queries."""

from collections.abc import Sequence
from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import Model
from django.http import Http404

from conversations import producers
from conversations.models import Conversation, Message
from conversations.reply_reads import owned_conversation


def get_for_user[M: Model](
    model: type[M], user: AbstractBaseUser, pk: UUID | str, related: Sequence[str] = ()
) -> M:
    """`model`'s object `pk` if `user` owns it, else 404 (never 403: ids are not confirmed).

    `related`: relations loaded in the same query (select_related).
    """
    owned = model.objects.for_user(user)
    if related:  # select_related() with no names would follow every relation
        owned = owned.select_related(*related)
    try:
        return owned.get(pk=pk)
    except (model.DoesNotExist, ValidationError, ValueError):
        raise Http404 from None


def get_conversation_with_budget(user: AbstractBaseUser, pk: UUID) -> Conversation:
    """get_for_user(Conversation, user, pk, related=["owner__budget"]), its SQL written once:
    it precedes every new message's reply (conversations/reply_reads.py)."""
    conversation = owned_conversation(user, pk)
    if conversation is None:
        raise Http404
    return conversation


def running_reply_for_user(user: AbstractBaseUser, reply_id: UUID) -> Message | None:
    """A reply this process is producing, if `user` owns it (else None, as if not running
    here): the stream a browser opens right after its message POST needs no query."""
    reply = producers.running_reply(reply_id)
    if reply is None or reply.conversation.owner_id != user.pk:
        return None
    return reply
