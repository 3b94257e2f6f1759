"""What a reply asks its provider: the model, and the conversation up to the message it answers."""

from dataclasses import dataclass
from uuid import UUID

from django.conf import settings

from conversations.models import ChosenReply, Message
from conversations.providers.base import ChatRequest, ModelChoice, Provider, ProviderError
from conversations.providers.registry import find_model, provider_for
from conversations.reply_reads import history_rows
from conversations.transcripts import Transcript


@dataclass
class ReplyJob:
    reply_id: UUID
    choice: ModelChoice
    provider: Provider
    request: ChatRequest

    @property
    def prompt_texts(self) -> list[str]:
        return prompt_texts(self.request.system, self.request.messages)


def prompt_texts(system: str, messages: list[dict[str, str]]) -> list[str]:
    """The texts a provider is asked: the system prompt (none: not a message), then each message."""
    return [*([system] if system else []), *(m["content"] for m in messages)]


def system_prompt_for(reply: Message) -> str:
    # The conversation's own system prompt as the reply was asked (its owner's, or the one a
    # /v1 request brought) replaces the site's default one.
    return reply.system_prompt or settings.CHATSITE_SYSTEM_PROMPT


def load_job(reply: Message) -> ReplyJob:
    """The request for a reply: the conversation up to the user message it answers."""
    return job_for(reply, history(reply))


def asked_texts(reply: Message) -> list[str]:
    """What a reply's provider is asked, as load_job's prompt_texts, whether or not its model
    is still configured: for an estimate of its usage when no provider reported one."""
    return prompt_texts(system_prompt_for(reply), history(reply))


def history(reply: Message) -> list[dict[str, str]]:
    """The conversation up to the user message `reply` answers, as the provider is sent it."""
    # In one query (the reply and its parent come from the request that made them): this
    # runs before every reply's first token, so its SQL is written once.
    earlier = history_rows(reply.conversation_id, reply.parent.created_at, reply.pk)
    answer_to = Message.chosen_answers(
        ChosenReply(parent_id, created_at, chosen_at, content, content)
        for _, role, content, parent_id, created_at, chosen_at in earlier
        if role == Message.Role.ASSISTANT
    )
    messages: list[dict[str, str]] = []
    for pk, role, content, *_ in earlier:
        if role == Message.Role.USER:
            messages.append({"role": "user", "content": content})
            if pk in answer_to:
                messages.append({"role": "assistant", "content": answer_to[pk]})
    return messages


def transcript_job(reply: Message, transcript: Transcript) -> ReplyJob:
    """load_job's request for the reply to a transcript just stored, without reading it back."""
    messages = [
        {"role": role, "content": content}
        for role, content in transcript.turns
        if content or role == Message.Role.USER  # as load_job skips empty answers
    ]
    return job_for(reply, messages)


def job_for(reply: Message, messages: list[dict[str, str]]) -> ReplyJob:
    """The reply's model and provider, asked `messages` under its system prompt."""
    choice = find_model(reply.model)
    if choice is None:
        raise ProviderError(f"The model {reply.model} is no longer configured.", code="bad_model")
    request = ChatRequest(
        model=choice.name,
        messages=messages,
        system=system_prompt_for(reply),
        stream=choice.stream,
        options=reply.metadata.get("options", {}),  # set by the OpenAI-compatible endpoint
    )
    return ReplyJob(reply.pk, choice, provider_for(choice), request)


def prepared_job(reply: Message) -> ReplyJob | None:
    """load_job in the thread trip that created the reply; None: the producer meets the error
    again and stores it as the reply's failure. Any error: the message and its reply are stored
    already, so the answer is their 201, never a 500 (a database that went away meanwhile)."""
    try:
        return load_job(reply)
    except Exception:  # met again by the producer, which logs it and stores the failure
        return None
