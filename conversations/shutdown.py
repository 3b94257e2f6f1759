"""What a server shutting down stores of the replies it is producing.

daphne stops its event loop on SIGTERM (a deploy, a restart) without ending what runs in it.
Each running reply is then stored from the main thread, the loop stopped: whole if its provider
had finished it (it only waited for the response's end or its own final write), stopped if it
was being stopped, else interrupted with every token it had. Left to crash recovery instead, it
would keep its last checkpoint, up to an interval older, and another host would see it
generating until its heartbeat went stale, a minute later. A grace period is short (Docker
gives ten seconds): past STORE_SECONDS, or with the database out of reach, the rest is left to
recovery.
"""

import logging
import time

from django.db import Error, InterfaceError, OperationalError

from conversations import producers
from conversations.completion import ReplyOutcome, finish_reply
from conversations.models import Message
from conversations.providers.base import ProviderError
from conversations.recovery import INTERRUPTED_REASON
from conversations.relay import ReplyProducer

logger = logging.getLogger(__name__)

STORE_SECONDS = 5.0


def store_running_replies() -> int:
    """Store every reply this process is producing, as it stands; how many were stored. Its
    event loop must be stopped: the replies' producers do not run meanwhile."""
    stored, deadline = 0, time.monotonic() + STORE_SECONDS
    for producer in producers.running_producers():
        if not isinstance(producer, ReplyProducer):
            continue
        if time.monotonic() > deadline:
            logger.warning("Out of time at shutdown: the other replies are left to recovery")
            break
        try:
            stored += finish_reply(producer.reply, outcome_at_exit(producer)) is not None
        except (OperationalError, InterfaceError):  # each would wait for a database as long
            logger.exception("Storing replies at shutdown failed: left to recovery")
            break
        except Error:
            logger.exception("Storing reply %s at shutdown failed", producer.reply_id)
    return stored


def outcome_at_exit(producer: ReplyProducer) -> ReplyOutcome:
    if producer.finish is not None:  # whole: the provider's Finish came
        return producer.outcome(Message.Status.COMPLETE, producer.job)
    if producer.stop_requested:  # with the stop's own reason (too long, a deletion, a key)
        return producer.outcome(Message.Status.STOPPED, producer.job)
    cut = ProviderError(INTERRUPTED_REASON, code="interrupted")
    return producer.outcome(Message.Status.INTERRUPTED, producer.job, cut)
