"""Conversations as files: JSON, Markdown and JSONL.

- JSON carries every stored field of the conversation and of each message (usage, timings,
  errors, metadata, a reply's system prompt; not the server's bookkeeping), messages in
  order; several replies with the same `parent` are the alternatives to one user message.
- Markdown is a transcript for people: alternatives marked "reply 2 of 3", and "chosen" on the
  one the conversation goes on from; replies asked under another system prompt than the
  conversation's now marked with it. Every stored text is in a fenced block, shown as
  written, and the title on one line with its punctuation escaped: neither a user nor a model
  can write a line that passes for the transcript's own, nor HTML, a link or an image that a
  Markdown viewer would act on.
- JSONL is one conversation a line in the OpenAI fine-tuning shape
  {"messages": [{"role", "content"}, ...]}: the system prompt the last answer was asked under,
  then each user message with its latest chosen reply that has text (the one the model is sent
  as context, reply_job.history). Unanswered user messages are left out, and a conversation
  with no answered message gives no line.

Bulk exports stream: conversations are read in batches with their messages, and written out
in pieces of about FLUSH_BYTES, so memory stays flat however many there are.
"""

import json
import re
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime
from uuid import UUID

from asgiref.sync import sync_to_async
from django.db.models import Model, QuerySet

from chatsite.request_threads import hold_request_thread
from conversations.models import ChosenReply, Conversation, Message

FORMATS = {  # name: (content type, file extension)
    "json": ("application/json", "json"),
    "markdown": ("text/markdown; charset=utf-8", "md"),
    "jsonl": ("application/jsonl; charset=utf-8", "jsonl"),
}
BATCH = 200  # conversations read (with their messages) per query
FLUSH_BYTES = 64 * 1024
# How several conversations join into one file: (head, separator, tail).
FRAMING = {
    "json": ('{"conversations":[', ",", "]}\n"),
    "markdown": ("", "\n\n---\n\n", ""),
    "jsonl": ("", "", ""),
}


def json_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()  # full precision, so the export round-trips exactly
    if isinstance(value, UUID):
        return str(value)
    return value


# A reply's producing process (host name, process id) and its last sign of life are the
# server's bookkeeping for crash recovery, not the owner's data.
BOOKKEEPING = {"producer", "heartbeat_at"}
# Finish reasons of a reply the model did not end itself (the chat page says "Cut short").
CUT_SHORT = {"length", "content_filter", "sensitive"}


def stored_fields(instance: Model) -> dict:
    return {
        field.name: json_value(field.value_from_object(instance))
        for field in instance._meta.concrete_fields
        if field.name not in BOOKKEEPING
    }


def conversation_record(conversation: Conversation, messages: list[Message]) -> dict:
    """Every stored field; the owner by username."""
    record = stored_fields(conversation)
    record["owner"] = conversation.owner.get_username()
    record["messages"] = [stored_fields(message) for message in messages]
    return record


def dumps(data: object) -> str:
    return json.dumps(data, ensure_ascii=False)


def fenced(text: str) -> list[str]:
    """Stored text as written, in a fenced block: its Markdown and HTML stay inert, and none of
    its lines can pass for the transcript's own (a heading, a reply's facts)."""
    longest = max(map(len, re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, text, fence]


# CommonMark lets a backslash escape every ASCII punctuation character.
MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def one_line(text: str) -> str:
    """A title on one line, shown as written: every punctuation mark escaped, so no link,
    image, emphasis or HTML in it does anything in a Markdown viewer."""
    return MARKDOWN_PUNCTUATION.sub(r"\\\1", " ".join(text.split()))


def markdown_transcript(conversation: Conversation, messages: list[Message]) -> str:
    lines = [
        f"# {one_line(conversation.title) or 'New chat'}",
        "",
        f"- Owner: {conversation.owner.get_username()}",
        f"- Model: {conversation.model}",
        f"- Created: {conversation.created_at.isoformat()}",
        f"- Updated: {conversation.updated_at.isoformat()}",
        f"- Conversation: {conversation.id}",
    ]
    if conversation.system_prompt:
        lines += ["", "## System prompt", "", *fenced(conversation.system_prompt)]
    alternatives = Counter(m.parent_id for m in messages if m.role == Message.Role.ASSISTANT)
    numbered: Counter = Counter()
    chosen = {reply.pk for reply in latest_answers(messages).values()}
    prompt_now = conversation.own_system_prompt(messages)
    for message in messages:
        if message.role == Message.Role.ASSISTANT:
            numbered[message.parent_id] += 1
            number, count = numbered[message.parent_id], alternatives[message.parent_id]
            title = f"## Assistant, reply {number} of {count}" if count > 1 else "## Assistant"
            if count > 1 and message.pk in chosen:
                title += " (chosen)"
            lines += ["", *markdown_reply(message, title, prompt_now)]
        else:
            heading = f"## {message.role.capitalize()}"
            lines += ["", heading, "", f"_{written(message)}_", "", *fenced(message.content)]
    return "\n".join(lines) + "\n"


def written(message: Message) -> str:
    return message.created_at.isoformat(timespec="seconds")


def markdown_reply(message: Message, title: str, prompt_now: str) -> list[str]:
    facts = [written(message), message.model, message.status]
    if message.finish_reason not in ("", "stop", message.status):  # cut short: length, a filter
        facts.append(f"finish reason: {message.finish_reason}")
    if message.total_tokens is not None:
        facts.append(f"{message.total_tokens} tokens ({message.usage_source})")
    lines = [title, "", f"_{' · '.join(fact for fact in facts if fact)}_", ""]
    if message.system_prompt != prompt_now:  # its owner has changed it since
        lines += [*earlier_prompt(message.system_prompt), ""]
    if message.reasoning:
        lines += ["_Reasoning:_", "", *fenced(message.reasoning), ""]
    lines += fenced(message.content)
    if message.error:
        lines += ["", f"_Error ({message.error_code}):_", "", *fenced(message.error)]
    return lines


def earlier_prompt(prompt: str) -> list[str]:
    if not prompt:
        return ["_Asked under the site's system prompt (the conversation had none of its own)._"]
    return ["_Asked under an earlier system prompt:_", "", *fenced(prompt)]


def latest_answers(messages: list[Message]) -> dict[UUID, Message]:
    """Each user message's latest chosen answer among `messages`, by the user message's id:
    the one its conversation goes on from (reply_job.history)."""
    return Message.chosen_answers(
        ChosenReply(m.parent_id, m.created_at, m.chosen_at, m.content, m)
        for m in messages
        if m.role == Message.Role.ASSISTANT
    )


def fine_tuning_example(conversation: Conversation, messages: list[Message]) -> dict | None:
    """The conversation up to its last answer, as reply_job.history sends it: the user messages
    before it, each with its chosen answer among those made by then (none: as it was sent,
    alone), under that answer's own system prompt. Chosen as the owner chooses now: an answer
    chosen since it was asked is the one this example teaches from."""
    latest_reply = latest_answers(messages)
    answered = [m for m in messages if m.role == Message.Role.USER and m.pk in latest_reply]
    if not answered:
        return None
    last = answered[-1]
    before = messages[: messages.index(last)]  # not an answer regenerated after it
    replies = latest_answers(before)
    replies[last.pk] = latest_reply[last.pk]
    if not any(whole(reply) for reply in replies.values()):
        return None  # nothing to learn from
    system = replies[last.pk].system_prompt
    chat = [{"role": "system", "content": system}] if system else []
    for message in [m for m in before if m.role == Message.Role.USER] + [last]:
        chat.append({"role": "user", "content": message.content})
        if (reply := replies.get(message.pk)) is None:
            continue
        # One stopped, failed or cut short stays as context, not learned from (OpenAI's weight).
        weight = {} if whole(reply) else {"weight": 0}
        chat.append({"role": "assistant", "content": reply.content, **weight})
    return {"messages": chat}


def whole(reply: Message) -> bool:
    """Complete, and ended by the model itself (not its length limit or a content filter)."""
    return reply.status == Message.Status.COMPLETE and reply.finish_reason not in CUT_SHORT


def render(conversation: Conversation, messages: list[Message], format: str) -> str:
    """One conversation in `format` ("" for a JSONL conversation with nothing to learn)."""
    if format == "markdown":
        return markdown_transcript(conversation, messages)
    if format == "jsonl":
        example = fine_tuning_example(conversation, messages)
        return dumps(example) + "\n" if example else ""
    return dumps(conversation_record(conversation, messages))


def messages_by_conversation(conversations: list[Conversation]) -> dict[UUID, list[Message]]:
    """Their messages in order, in one query. Unlike prefetch_related, the messages hold no
    reference back to their conversation: no reference cycles, so memory is freed at once."""
    grouped: dict[UUID, list[Message]] = {conversation.pk: [] for conversation in conversations}
    for message in Message.objects.filter(conversation_id__in=grouped).order_by("created_at"):
        grouped[message.conversation_id].append(message)
    return grouped


def render_one(conversation: Conversation, format: str) -> str:
    return render(conversation, messages_by_conversation([conversation])[conversation.pk], format)


def render_all(conversations: QuerySet, format: str) -> str:
    """Several conversations as one file (admin actions: small sets)."""
    chosen = list(conversations.select_related("owner"))
    messages = messages_by_conversation(chosen)
    head, separator, tail = FRAMING[format]
    parts = (render(conversation, messages[conversation.pk], format) for conversation in chosen)
    return head + separator.join(part for part in parts if part) + tail


async def batches(conversations: QuerySet) -> AsyncIterator[list[Conversation]]:
    hold_request_thread()  # aiterator reads one cursor across calls: one thread for them all
    batch = []
    async for conversation in conversations.select_related("owner").aiterator(chunk_size=BATCH):
        batch.append(conversation)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


async def stream_all(conversations: QuerySet, format: str) -> AsyncIterator[bytes]:
    """The same file, produced piece by piece from batched reads (for StreamingHttpResponse)."""
    head, separator, tail = FRAMING[format]
    pending, size, first = [head], len(head), True
    async for batch in batches(conversations):
        messages = await sync_to_async(messages_by_conversation)(batch)
        for conversation in batch:
            part = render(conversation, messages[conversation.pk], format)
            if not part:
                continue
            pending.append(part if first else separator + part)
            size += len(pending[-1])
            first = False
            if size >= FLUSH_BYTES:
                yield "".join(pending).encode()
                pending, size = [], 0
    pending.append(tail)
    yield "".join(pending).encode()
