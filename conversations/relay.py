"""The relay: one producer per reply reads the provider and appends to the reply's event log.

A producer is a detached asyncio task, started by the message POST and owned by no request,
so a browser that leaves changes nothing: the reply is still read to its end and saved by
the completion hook. Stream views read the event log; they never start or repeat a
generation. The running producers are kept, found and stopped in producers.py.
Flow: providers → relay → completion → models.
"""

import asyncio
import logging
import time
from collections.abc import AsyncGenerator

from django.conf import settings
from django.db import InterfaceError, OperationalError

from conversations import producers
from conversations.background_db import in_background
from conversations.checkpoints import checkpoint_loop
from conversations.completion import PartialReply, ReplyOutcome, store_final
from conversations.eventlog import EventLog, EventLogUnavailable, event_log
from conversations.models import Message
from conversations.providers.base import Finish, ProviderError, ReasoningDelta, TextDelta
from conversations.providers.characters import WholeCharacters
from conversations.reply_job import ReplyJob, load_job
from conversations.usage import complete_usage

logger = logging.getLogger(__name__)

# Why a reply whose final write the database refused (logged with the error; not a database
# out of reach) is stored as failed instead.
UNSTORABLE = "chatsite could not store this reply as it ended; the text up to then is kept."

# After a reply's Finish, how long its provider may take to end the response.
END_OF_STREAM_SECONDS = 1.0

# One read from a provider can hold hundreds of tokens (a fast model, a cached answer). A
# producer relaying them gives the event loop a turn every TURN_EVENTS events (a few tenths of
# a millisecond), so this reply's own stream and every other request are not held up until the
# whole burst is relayed. Counted, not timed: events that come one per read already give way
# at each read, and a timed turn added a pass of the loop to every one of them. With 32, the
# stream GET that follows a message POST waited over a millisecond per turn (bench/, 1x200-fast).
TURN_EVENTS = 8


async def start_reply(reply: Message, job: ReplyJob | None = None) -> None:
    """Start the one producer of a new reply, detached from the request that asked for it."""
    try:
        await event_log().open(reply.pk)
    except EventLogUnavailable as error:
        # No log to stream it through: stored as failed now, with the reason, which its stream
        # then reads from the database (the message POST itself succeeded).
        failed = ReplyOutcome(
            status=Message.Status.FAILED,
            content="",
            finish_reason=Message.Status.FAILED,
            error_code="event_log_unavailable",
            error=f"This reply could not start: {error} Try again in a moment.",
        )
        await store_final(reply, failed)
        return
    producers.run_detached(ReplyProducer(reply, job))


FAILED_HERE = "chatsite failed to produce this reply."
CANCELLED_HERE = "chatsite stopped reading this reply before its end; the text up to then is kept."


class ReplyProducer:
    def __init__(self, reply: Message, job: ReplyJob | None = None) -> None:
        self.reply = reply  # as created, with its user message (parent)
        self.reply_id = reply.pk
        self.job = job  # loaded by the request that created the reply, or by run()
        self.parts: list[str] = []
        self.reasoning_parts: list[str] = []
        self.finish: Finish | None = None
        self.attempts: list[dict] = []
        self.asked = False  # whether the provider was sent a request (and may bill it)
        self.billed = False  # whether a failed attempt before the last was billed
        self.started = time.monotonic()
        self.first_token_at: float | None = None
        self.stop_requested = False
        self.stop_reason = ("", "")  # (code, message) when not the owner's own stop
        self.finished = asyncio.Event()
        self._reading: asyncio.Task | None = None

    def cancel(self, code: str = "", reason: str = "") -> None:
        """Stop reading: closing the upstream connection stops generation (and billing). The
        first stop's reason is the one stored: later ones come while it takes effect."""
        if not self.stop_requested:
            self.stop_reason = (code, reason)
        self.stop_requested = True
        if self._reading is not None:
            self._reading.cancel()

    def _stop_as_too_long(self) -> None:
        """Past CHATSITE_REPLY_MAX_SECONDS: stopped as by a Stop, with its text."""
        self.cancel(producers.TOO_LONG, producers.too_long_reason())

    async def run(self) -> None:
        try:
            job = self.job
            try:
                self.job = job = job or await in_background(load_job)(self.reply)
                outcome = await self._produce(job)
            except ProviderError as error:
                outcome = self.outcome(Message.Status.FAILED, job, error)
            except Exception:
                logger.exception("Producer for reply %s failed", self.reply_id)
                failure = ProviderError(FAILED_HERE, code="internal_error")
                outcome = self.outcome(Message.Status.FAILED, job, failure)
            await self._finish_or_fail(outcome, job)
        finally:  # whatever ends it, even a cancellation: a stop waiting for it must hear
            producers.unregister(self.reply_id)
            self.finished.set()

    async def _finish_or_fail(self, outcome: ReplyOutcome, job: ReplyJob | None) -> None:
        """Store the outcome. Should the database refuse it (not be out of reach, which
        store_final waits out and then leaves to crash recovery), the reply is stored as failed,
        with its text, instead of left running until recovery, which gives no reason."""
        try:
            await self._finish(outcome)
            return
        except (OperationalError, InterfaceError):
            raise  # still out of reach after store_final's minute: crash recovery's turn
        except Exception:
            logger.exception("Finishing reply %s failed", self.reply_id)
        failure = ProviderError(UNSTORABLE, code="internal_error")
        await self._finish(self.outcome(Message.Status.FAILED, job, failure))

    async def _produce(self, job: ReplyJob) -> ReplyOutcome:
        if self.stop_requested:
            return self.outcome(Message.Status.STOPPED, job)
        self._reading = asyncio.create_task(self._read_with_retries(job))
        checkpoint_loop.track(self)
        limit = asyncio.get_running_loop().call_later(
            settings.CHATSITE_REPLY_MAX_SECONDS, self._stop_as_too_long
        )
        try:
            await self._reading
        except asyncio.CancelledError:
            if self.stop_requested:
                if self.finish is None:  # a stop after the Finish changes nothing: it is whole
                    return self.outcome(Message.Status.STOPPED, job)
            elif asyncio.current_task().cancelling():
                raise  # the server is shutting down: its reply is stored at exit (shutdown.py)
            else:  # cancelled by none of chatsite's stops: kept as a crash would leave it
                logger.error("Reading reply %s was cancelled, not by a stop", self.reply_id)
                cut = ProviderError(CANCELLED_HERE, code="interrupted")
                return self.outcome(Message.Status.INTERRUPTED, job, cut)
        finally:
            limit.cancel()
            checkpoint_loop.untrack(self.reply_id)
        return self.outcome(Message.Status.COMPLETE, job)

    async def _read_with_retries(self, job: ReplyJob) -> None:
        """Read the provider; before the first token, retry what may pass with backoff."""
        for attempt in range(1, settings.CHATSITE_RETRY_ATTEMPTS + 1):
            try:
                await self._read(job)
                self.attempts.append({"attempt": attempt, "outcome": "ok"})
                return
            except ProviderError as error:
                record = {"attempt": attempt, "outcome": error.code, "status": error.status}
                self.attempts.append(record)
                last = attempt == settings.CHATSITE_RETRY_ATTEMPTS
                if not error.retryable or self.first_token_at is not None or last:
                    raise
                delay = retry_delay(attempt, error.retry_after)
                record["retry_in_seconds"] = delay
                # Refused unbilled (it would carry its usage), as every attempt before: a stop
                # in the wait counts none.
                self.billed = self.billed or error.usage is not None
                self.asked = self.billed
                await asyncio.sleep(delay)

    async def _read(self, job: ReplyJob) -> None:
        log = event_log()
        # Afresh each attempt: half a character from a failed attempt must not carry over.
        text, reasoning = WholeCharacters(), WholeCharacters()
        self.asked = True
        events = job.provider.stream(job.request)
        until_turn = TURN_EVENTS
        async for event in events:
            until_turn -= 1
            if not until_turn:
                await asyncio.sleep(0)  # the loop's turn (TURN_EVENTS)
                until_turn = TURN_EVENTS
            if type(event) is TextDelta:
                first = not self.parts
                await self._add(log, "delta", self.parts, text.feed(event.text))
                if first and self.parts:
                    until_turn = 1  # the first text goes out now, not a turn later
            elif type(event) is ReasoningDelta:
                await self._add(log, "reasoning", self.reasoning_parts, reasoning.feed(event.text))
            elif type(event) is Finish:
                self.finish = event
                break
        else:  # a provider ends with Finish or raises; anything else is a bug
            raise ProviderError(
                f"{job.provider.label} ended the reply without finishing it.", code="incomplete"
            )
        # Half a character whose other half never came: U+FFFD, as the reply ends.
        await self._add(log, "reasoning", self.reasoning_parts, reasoning.end())
        await self._add(log, "delta", self.parts, text.end())
        await read_to_end(events)

    async def _add(self, log: EventLog, name: str, parts: list[str], text: str) -> None:
        if not text:
            return  # half a character, waiting for the other half
        self._first_token()
        parts.append(text)
        await log.append(self.reply_id, name, {"content": text})

    def _first_token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.monotonic()
            # Saved at once, so the reply shows as streaming.
            checkpoint_loop.first_token(self.reply_id)

    def progress(self) -> tuple[int, bool]:
        return len(self.parts) + len(self.reasoning_parts), self.first_token_at is not None

    def partial(self) -> PartialReply:
        return PartialReply(
            self.reply_id,
            "".join(self.parts),
            "".join(self.reasoning_parts),
            streaming=self.first_token_at is not None,
        )

    def outcome(
        self, status: str, job: ReplyJob | None, error: ProviderError | None = None
    ) -> ReplyOutcome:
        content, reasoning = "".join(self.parts), "".join(self.reasoning_parts)
        finish = self.finish if status == Message.Status.COMPLETE else None
        reported = finish.usage if finish else error and error.usage
        # Failed before any text, with no count from the provider, or stopped before it was
        # asked: a request refused, failed or never sent is not billed, so no estimate of its
        # prompt is counted (budgets) either.
        unbilled = (status == Message.Status.FAILED and not self.billed) or not self.asked
        nothing = unbilled and not (content or reasoning or reported)
        prompt_texts = job.prompt_texts if job and not nothing else []
        usage, source = complete_usage(reported, prompt_texts, [content, reasoning])
        stopped = self.stop_reason if status == Message.Status.STOPPED else ("", "")
        error_code, error_message = (error.code, error.message) if error else stopped
        other_reason = (error and error.finish_reason) or status  # without a provider's Finish
        first_token = self.first_token_at
        return ReplyOutcome(
            status=status,
            content=content,
            reasoning=reasoning,
            finish_reason=finish.finish_reason if finish else other_reason,
            usage=usage,
            usage_source=source,
            error_code=error_code,
            error=error_message,
            time_to_first_token_ms=_ms(first_token - self.started) if first_token else None,
            duration_ms=_ms(time.monotonic() - self.started),
            metadata={**self.reply.metadata, "attempts": self.attempts},
        )

    async def _finish(self, outcome: ReplyOutcome) -> None:
        from conversations.api.serializers import message_data

        message = await store_final(self.reply, outcome)
        if message is None:  # already final (crash recovery or a deleted conversation)
            message = await in_background(Message.objects.filter(pk=self.reply_id).first)()
        # The last event says what is stored, which another's final write may have decided.
        final = message or outcome
        payload = message_data(message) if message else None
        log = event_log()
        if final.status == Message.Status.FAILED:
            error = {"code": final.error_code, "message": final.error}
            await log.close(self.reply_id, "error", {"error": error, "message": payload})
        else:
            await log.close(self.reply_id, "done", {"message": payload})


async def read_to_end(events: AsyncGenerator) -> None:
    """Let a provider's stream end by itself after its Finish (briefly): it reads the last
    bytes of the response, so the connection is kept for the next reply, not closed."""
    try:
        async with asyncio.timeout(END_OF_STREAM_SECONDS):
            async for _ in events:
                pass
    except (TimeoutError, ProviderError):
        pass  # the reply is whole all the same; only its connection is not reused
    finally:
        await events.aclose()


def retry_delay(attempt: int, retry_after: float | None) -> float:
    backoff = settings.CHATSITE_RETRY_BACKOFF_SECONDS * 2 ** (attempt - 1)
    return min(settings.CHATSITE_RETRY_MAX_SECONDS, max(backoff, retry_after or 0.0))


def _ms(seconds: float) -> int:
    return round(seconds * 1000)
