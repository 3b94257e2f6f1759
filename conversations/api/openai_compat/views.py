"""POST /v1/chat/completions and GET /v1/models, for clients of OpenAI's API.

A completion takes one request: its view stores the conversation and the pending reply,
starts the reply's producer (reply_start.starts_replies) and answers with the reply's event
log as OpenAI chunks, or, without `stream`, with the whole completion once it is stored.
A client that leaves stops its reply, as OpenAI's API does: it could not resume it, and
generating on would cost tokens; the reply is stored with its text so far and why.
"""

import asyncio
import contextlib
import functools
import inspect
import math
from collections.abc import AsyncGenerator, Callable
from uuid import UUID

from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations.api.openai_compat.chunks import (
    ChunkWriter,
    completion,
    completion_chunks,
)
from conversations.api.openai_compat.errors import (
    DELETED,
    ERROR_STATUS,
    MODEL_NOT_FOUND,
    error_response,
    openai_exception_handler,
    stopped_error,
)
from conversations.api.openai_compat.inputs import (
    ChatCompletionInput,
    includes_usage,
    transcript_of,
)
from conversations.api.parsers import AnyAccept
from conversations.api.reply_start import starts_replies
from conversations.api.serializers import validated
from conversations.api.stream import EventStreamResponse, reply_events
from conversations.apikeys import KEY_REVOKED_MESSAGE, until_revoked
from conversations.budgets import check_budget, rate_held
from conversations.models import ApiKey, Message
from conversations.producers import (
    CREDENTIAL_ENDED,
    PRODUCER_ID,
    stop_for_client_gone,
    stop_for_credential_ended,
)
from conversations.providers.base import ModelChoice
from conversations.providers.registry import available_models, find_model
from conversations.reply_job import transcript_job
from conversations.stream_watch import (
    SESSION_ENDED_EVENT,
    SESSION_ENDED_MESSAGE,
    OpenSession,
    open_session,
    open_sessions,
    stream_heartbeat_seconds,
    until_ended,
)
from conversations.transcripts import start_transcript


class OpenAIEndpoint(APIView):
    """As OpenAI's API answers: Accept is not read (SSE clients send text/event-stream), and
    errors come in its shape."""

    content_negotiation_class = AnyAccept

    def get_exception_handler(self) -> Callable:
        return openai_exception_handler


@extend_schema(exclude=True)  # OpenAI's API reference describes it, not chatsite's schema
class ModelList(OpenAIEndpoint):
    def get(self, request: Request) -> Response:
        models = [model_object(model) for model in available_models()]
        return Response({"object": "list", "data": models})


@extend_schema(exclude=True)
class ModelDetail(OpenAIEndpoint):
    """GET /v1/models/{id}: the SDKs' models.retrieve()."""

    def get(self, request: Request, model_id: str) -> HttpResponseBase:
        model = next((m for m in available_models() if m.id == model_id), None)
        if model is None:
            message = f"The model {model_id!r} does not exist here; GET /v1/models lists them."
            return error_response(404, MODEL_NOT_FOUND, message)
        return Response(model_object(model))


def model_object(model: ModelChoice) -> dict:
    return {"id": model.id, "object": "model", "created": 0, "owned_by": model.provider}


@extend_schema(exclude=True)
class ChatCompletions(OpenAIEndpoint):
    def post(self, request: Request) -> HttpResponseBase:
        check_budget(request.user)  # 429 before anything is stored or a provider is called
        data = validated(ChatCompletionInput, request.data)
        model = find_model(data["model"])
        transcript = transcript_of(data)
        with rate_held(request.user):
            reply = start_transcript(request.user, model, transcript, PRODUCER_ID)
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        # Not with a key: with the session (a page's script), watched as the chat's streams are.
        session = None if api_key else open_session(request.session.session_key, request.user)
        if data["stream"]:
            response = completion_stream(reply, includes_usage(data), api_key, session)
        else:
            response = AwaitedCompletion(reply, api_key, session)
        response.reply_to_start = reply  # started once the response is ready (reply_start.py)
        response.job_to_start = transcript_job(reply, transcript)  # no history to read back
        response["X-Chatsite-Conversation"] = str(reply.conversation_id)
        response["X-Chatsite-Message"] = str(reply.pk)
        return response


def completion_stream(
    reply: Message, include_usage: bool, api_key: ApiKey | None, session: OpenSession | None
) -> EventStreamResponse:
    chunks = completion_chunks(ChunkWriter(reply, include_usage), followed(reply, api_key, session))
    response = CompletionStream(reply.pk, stops_when_abandoned(reply.pk, chunks))
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each chunk on at once
    return response


def followed(
    reply: Message, api_key: ApiKey | None, session: OpenSession | None
) -> AsyncGenerator[bytes]:
    """The reply's frames to its end (no time limit, as an OpenAI client cannot resume), cut
    once its key is revoked or its session ends, which stops the reply."""
    frames = reply_events(reply.pk, 0, stream_heartbeat_seconds(api_key), max_seconds=math.inf)
    if api_key is not None:
        stop = functools.partial(stop_for_credential_ended, reply.pk, "key_revoked")
        return until_revoked(frames, api_key.pk, on_revoked=stop)
    stop = functools.partial(stop_for_credential_ended, reply.pk, "session_ended")
    return until_ended(frames, open_sessions, session, stop, SESSION_ENDED_EVENT)


async def stops_when_abandoned(
    reply_id: UUID, parts: AsyncGenerator[bytes]
) -> AsyncGenerator[bytes]:
    """`parts` to their end; a client that leaves before then stops the reply.

    Django closes a streaming response's iterator (or cancels the awaiting view) when the
    client disconnects: either ends this generator early."""
    ended = False
    try:
        async with contextlib.aclosing(parts):
            async for part in parts:
                yield part
        ended = True
    finally:
        if not ended:
            stop_for_client_gone(reply_id)


class CompletionStream(EventStreamResponse):
    """A streamed completion. Closed before it began (the client left as its headers went),
    it stops its reply: stops_when_abandoned's own stop runs only once it was iterated."""

    def __init__(self, reply_id: UUID, parts: AsyncGenerator[bytes]) -> None:
        super().__init__(parts, content_type="text/event-stream")
        self.reply_id, self.parts = reply_id, parts

    def close(self) -> None:
        # On the event loop, as the stop must be: chatsite's handler closes responses there
        # (chatsite/asgi_handler.py; Django's own would close it in a thread).
        super().close()
        if inspect.getasyncgenstate(self.parts) == inspect.AGEN_CREATED:
            stop_for_client_gone(self.reply_id)


class AwaitedCompletion(HttpResponse):
    """Placeholder for a completion without `stream`: answered once the reply is stored."""

    def __init__(self, reply: Message, api_key: ApiKey | None, session: OpenSession | None) -> None:
        super().__init__(status=status.HTTP_202_ACCEPTED)
        self.reply, self.api_key, self.session = reply, api_key, session

    async def final(self) -> JsonResponse:
        followed_reply = followed(self.reply, self.api_key, self.session)
        frames = stops_when_abandoned(self.reply.pk, followed_reply)
        async with contextlib.aclosing(frames):
            async for _ in frames:
                pass  # to the reply's done or error event
        reply = await Message.objects.filter(pk=self.reply.pk).afirst()
        if reply is None:
            answer = error_response(404, "not_found", DELETED)
        elif reply.is_active or reply.error_code in CREDENTIAL_ENDED:  # the wait ended with it
            code = "key_revoked" if self.api_key else "session_ended"  # what it came with
            answer = error_response(401, code, CREDENTIAL_ENDED_ANSWER[code])
        elif reply.status == Message.Status.FAILED:
            status_for = ERROR_STATUS.get(reply.error_code, 502)
            answer = error_response(status_for, reply.error_code, reply.error)
        elif reply.status == Message.Status.INTERRUPTED:  # cut short: no whole completion
            answer = error_response(503, reply.error_code, reply.error)
        elif reply.status == Message.Status.STOPPED:  # by its owner, or deleted meanwhile
            error = stopped_error(reply.error_code, reply.error)
            answer = error_response(ERROR_STATUS.get(error["code"], 409), **error)
        else:
            answer = JsonResponse(completion(reply))
        for header in ("X-Chatsite-Conversation", "X-Chatsite-Message"):
            answer[header] = self[header]
        return answer


CREDENTIAL_ENDED_ANSWER = {
    "key_revoked": KEY_REVOKED_MESSAGE,
    "session_ended": SESSION_ENDED_MESSAGE,
}


def answers_when_stored(view: Callable) -> Callable:
    """The completions view, waiting for the whole reply where the client did not stream."""

    async def answer(request: HttpRequest) -> HttpResponseBase:
        starting = asyncio.ensure_future(view(request))  # shielded: see reply_start.py
        try:
            response = await asyncio.shield(starting)
        except asyncio.CancelledError:  # the client left before its answer began
            starting.add_done_callback(stop_once_started)
            raise
        if isinstance(response, AwaitedCompletion):
            return await response.final()
        return response

    return functools.update_wrapper(answer, view)


def stop_once_started(starting: asyncio.Future) -> None:
    """A completion whose client left while its reply was stored and started: stopped, as
    when it leaves mid-stream, rather than generated (and billed) for no one."""
    if not starting.cancelled() and starting.exception() is None:
        reply = getattr(starting.result(), "reply_to_start", None)
        if reply is not None:
            stop_for_client_gone(reply.pk)


chat_completions = answers_when_stored(starts_replies(ChatCompletions.as_view()))
model_list = ModelList.as_view()
model_detail = ModelDetail.as_view()
