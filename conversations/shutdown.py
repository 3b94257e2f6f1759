"""What a server shutting down stores of the replies it is producing.

daphne stops its event loop on SIGTERM (a deploy, a restart) without ending what runs in it.
Each running reply is then stored from the main thread, the loop stopped: whole if its provider
had finished it (it only waited for the response's end or its own final write), else
interrupted with every token it had. Left to crash recovery instead, it would keep its last
checkpoint, up to an interval older, and another host would see it generating until its
heartbeat went stale, a minute later.
"""

import logging

from django.db import DatabaseError

from conversations import producers
from conversations.completion import finish_reply
from conversations.models import Message
from conversations.providers.base import ProviderError
from conversations.recovery import INTERRUPTED_REASON
from conversations.relay import ReplyProducer

logger = logging.getLogger(__name__)


def store_running_replies() -> int:
    """Store every reply this process is producing, as it stands; how many were stored. Its
    event loop must be stopped: the replies' producers do not run meanwhile."""
    stored = 0
    for producer in producers.running_producers():
        if not isinstance(producer, ReplyProducer):
            continue
        if producer.finish is not None:  # whole: the provider's Finish came
            outcome = producer.outcome(Message.Status.COMPLETE, producer.job)
        else:
            cut = ProviderError(INTERRUPTED_REASON, code="interrupted")
            outcome = producer.outcome(Message.Status.INTERRUPTED, producer.job, cut)
        try:
            stored += finish_reply(producer.reply, outcome) is not None
        except DatabaseError:  # left to crash recovery, as after a crash
            logger.exception("Storing reply %s at shutdown failed", producer.reply_id)
    return stored
