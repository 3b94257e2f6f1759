"""The completion hook: the one place a reply's final state is written.

finish_reply is called by a reply's producer when the provider's stream ends, however it
ends (a second time, as failed, should the database refuse the first); end_as_saved by
crash recovery and by a stop its producer does not answer, with the text last saved. Both
UPDATE only a reply still running, so the first final write lands and any later one is a
no-op: a reply is never stored twice. One exception: a producer that has its whole reply
stores it over the interrupted state crash recovery elsewhere gave it meanwhile (take_back).
"""

import asyncio
import copy
import logging
from dataclasses import dataclass, field
from uuid import UUID

from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from conversations import sql_once
from conversations.background_db import in_background
from conversations.models import Conversation, Message
from conversations.providers.base import Usage
from conversations.providers.characters import storable_text

logger = logging.getLogger(__name__)

# A database briefly out of reach (SQLite locked past its busy timeout by another process,
# PostgreSQL restarting) must not lose a finished reply: its final write is tried again after
# each of these pauses (about a minute in all), before it is left to crash recovery, which
# keeps only its last checkpoint. Meanwhile the reply counts as running here.
FINISH_RETRY_SECONDS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)

# Every write to a running reply is guarded by its status: a reply already final stays so.
ACTIVE = ("status", Message.ACTIVE_STATUSES)
FINISH_REASON_LENGTH = Message._meta.get_field("finish_reason").max_length
ERROR_CODE_LENGTH = Message._meta.get_field("error_code").max_length


@dataclass
class ReplyOutcome:
    status: str  # one of Message.Status's final values
    content: str
    reasoning: str = ""
    finish_reason: str = ""
    usage: Usage = field(default_factory=Usage)
    usage_source: str = Message.UsageSource.ESTIMATED
    error_code: str = ""
    error: str = ""
    time_to_first_token_ms: int | None = None
    duration_ms: int | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Error texts and finish reasons come from providers: a NUL, half a character or a
        # reason longer than its column would make the reply's one final write fail.
        self.finish_reason = storable_text(str(self.finish_reason or ""), FINISH_REASON_LENGTH)
        self.error_code = storable_text(self.error_code, ERROR_CODE_LENGTH)
        self.error = storable_text(self.error)


def finish_reply(reply: Message, outcome: ReplyOutcome) -> Message | None:
    """Store the reply's final text, status, usage and timings; the reply as stored, or None
    if it was already final."""
    final = {
        "status": outcome.status,
        "content": outcome.content,
        "reasoning": outcome.reasoning,
        "finish_reason": outcome.finish_reason,
        "prompt_tokens": outcome.usage.prompt_tokens,
        "completion_tokens": outcome.usage.completion_tokens,
        "total_tokens": outcome.usage.total_tokens,
        "reasoning_tokens": outcome.usage.reasoning_tokens,
        "usage_source": outcome.usage_source,
        "error_code": outcome.error_code,
        "error": outcome.error,
        "time_to_first_token_ms": outcome.time_to_first_token_ms,
        "duration_ms": outcome.duration_ms,
        "metadata": outcome.metadata,
        "completed_at": timezone.now(),
    }
    if not (write_final(reply, final) or take_back(reply, final)):
        return None
    # What was written, on a copy of the reply: no second read for the done event.
    stored = copy.copy(reply)
    for name, value in final.items():
        setattr(stored, name, value)
    return stored


async def store_final(reply: Message, outcome: ReplyOutcome) -> Message | None:
    """finish_reply, tried again while the database cannot be reached (FINISH_RETRY_SECONDS)."""
    for pause in FINISH_RETRY_SECONDS:
        try:
            return await in_background(finish_reply)(reply, outcome)
        except (OperationalError, InterfaceError) as error:
            logger.warning(
                "Storing reply %s failed (%s); trying again in %g s", reply.pk, error, pause
            )
            await asyncio.sleep(pause)
    return await in_background(finish_reply)(reply, outcome)


@dataclass(frozen=True)
class PartialReply:
    reply_id: UUID
    content: str
    reasoning: str
    streaming: bool  # the first token has arrived


def checkpoint_replies(partials: list[PartialReply]) -> set[UUID]:
    """Save running replies' partial text, so a crash loses at most one checkpoint interval.

    Returns those of them that are no longer running: stored as final by another process (a
    stop it could not pass on, or crash recovery) or deleted with their conversation."""
    now = timezone.now()
    rows: dict[str, list[list]] = {}  # statement -> one row of parameters per reply
    for partial in partials:
        values = {"heartbeat_at": now, "content": partial.content, "reasoning": partial.reasoning}
        if partial.streaming:
            values["status"] = Message.Status.STREAMING
        sql, params = sql_once.update_statement(
            Message, partial.reply_id, values, connection.alias, only_if=ACTIVE
        )
        rows.setdefault(sql, []).append(params)
    # One commit for all of them: a commit per reply per interval crowded out everything else.
    # Each statement is written once and run with executemany: built by the ORM for each reply
    # it cost about 20 times as much CPU (0.25 ms a row on SQLite, 0.6 ms on PostgreSQL).
    with transaction.atomic(), connection.cursor() as cursor:
        for sql, params in rows.items():
            cursor.executemany(sql, params)
    saved = {partial.reply_id for partial in partials}
    running = Message.objects.active_replies().filter(pk__in=saved).values_list("pk", flat=True)
    return saved - set(running)


def end_as_saved(reply: Message, status: str, why: tuple[str, str], usage: Usage) -> bool:
    """Store a reply its producer will not finish (gone: interrupted; not answering a stop:
    stopped) with the text it last saved, `why` (error code and reason) and `usage`, an
    estimate; False if already final."""
    final = {
        "status": status,
        "finish_reason": status,  # "stopped" or "interrupted": no provider's Finish came
        "error_code": why[0],
        "error": why[1],
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "usage_source": Message.UsageSource.ESTIMATED,
        "completed_at": timezone.now(),
    }
    return write_final(reply, final)


def take_back(reply: Message, final: dict) -> bool:
    """Store a producer's whole reply over the interrupted state crash recovery on another host
    gave it while the database was out of reach (its final write retried, its heartbeats
    stopped): it has the whole text and the provider's usage, recovery the last checkpoint and
    an estimate. Not once the conversation has gone on (a message since, asked with the cut
    text), nor over anything else: the producer writes its final state once, a stop stands."""
    if final["status"] != Message.Status.COMPLETE:
        return False
    since = Message.objects.filter(conversation_id=reply.conversation_id)
    went_on = Exists(since.filter(created_at__gt=OuterRef("completed_at")))
    recovered = Message.objects.filter(pk=reply.pk, status=Message.Status.INTERRUPTED)
    touched = {"updated_at": final["completed_at"]}
    with transaction.atomic():  # the reply and its conversation's time, as write_final
        if not recovered.filter(~went_on).update(**final):
            return False
        sql_once.update(Conversation, reply.conversation_id, touched, connection.alias)
    logger.warning("Reply %s: its producer stored it over what another process had", reply.pk)
    return True


def write_final(reply: Message, final: dict) -> bool:
    """Write `final` on the reply if it is still active (False if not), and its time as the
    conversation's activity time (the lists' order, ?updated_after=)."""
    touched = {"updated_at": final["completed_at"]}
    # Both or neither, and only on an active reply: a producer and recovery finishing it at
    # the same moment win or lose whole. Their SQL is written once: the ORM's compiling it
    # held SQLite's one write lock from every other writer (bench/).
    with transaction.atomic():
        if not sql_once.update(Message, reply.pk, final, connection.alias, only_if=ACTIVE):
            return False
        sql_once.update(Conversation, reply.conversation_id, touched, connection.alias)
    return True
