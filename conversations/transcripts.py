"""A conversation that arrives whole: the OpenAI-compatible endpoint's messages, stored as a
new conversation whose last user message gets a pending reply."""

from dataclasses import dataclass, field
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import router, transaction
from django.utils import timezone

from conversations import sql_once
from conversations.models import Conversation, Message, title_from
from conversations.providers.base import ModelChoice


@dataclass(frozen=True)
class Transcript:
    system: str  # the client's system prompt; empty: the site's (CHATSITE_SYSTEM_PROMPT)
    turns: list[tuple[str, str]]  # (role, content): user and assistant in turn, ending with user
    options: dict = field(default_factory=dict)  # sampling options (ChatRequest.options)


def start_transcript(
    owner: AbstractBaseUser, model: ModelChoice, transcript: Transcript, producer: str
) -> Message:
    """Store the transcript as a new conversation of `owner`; its pending reply."""
    now = timezone.now()
    first_user = next(content for role, content in transcript.turns if role == Message.Role.USER)
    conversation = Conversation(
        owner=owner,
        title=title_from(first_user),
        model=model.id,
        source=Conversation.Source.API,
        created_at=now,
        updated_at=now,
    )
    rows: list[Message] = []

    def add(role: str, content: str, parent: Message | None = None) -> Message:
        message = Message(
            conversation=conversation,
            role=role,
            content=content,
            parent=parent,
            # An earlier answer, as the client had it, was given under the same prompt.
            system_prompt=transcript.system if role == Message.Role.ASSISTANT else "",
            status=Message.Status.COMPLETE,
            completed_at=now,
        )
        rows.append(message)
        return message

    if transcript.system:
        add(Message.Role.SYSTEM, transcript.system)
    asked: Message | None = None
    for role, content in transcript.turns:
        if role == Message.Role.USER:
            asked = add(role, content)
        else:  # an earlier answer, as the client had it: the reply to the message before it
            add(role, content, parent=asked)
    reply = conversation.pending_reply_to(asked, model, producer, transcript.system)
    # One microsecond apart: the history is read back in created_at order (reply_job.py).
    for offset, message in enumerate([*rows, reply]):
        message.created_at = now + timedelta(microseconds=offset)
    if transcript.options:
        reply.metadata = {"options": transcript.options}  # what load_job asks the provider
    # The conversation, its messages and the pending reply together, or nothing; SQL written
    # once (sql_once.py): every /v1 request waits for it.
    with transaction.atomic():
        sql_once.insert([conversation], router.db_for_write(Conversation))
        sql_once.insert([*rows, reply], router.db_for_write(Message))
    return reply
