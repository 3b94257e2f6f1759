"""Stop closes the upstream connection, stores exactly what was streamed, ends every stream."""

import asyncio
import threading
import uuid

from asgiref.sync import sync_to_async

from conversations import producers
from conversations.models import Conversation, Message
from conversations.producers import PRODUCER_ID
from conversations.providers import http
from conversations.providers.registry import default_model
from conversations.recovery import end_without_producer, stop_reply_now
from conversations.relay import start_reply
from tests.client import read_events, text_of
from tests.replies import send_held_reply, stub_job
from tests.stub import Gate, Script, gated_stream, json_error, openai_chunk, openai_stream


def test_stop_before_the_first_token_closes_upstream_and_stores_an_empty_stopped_reply(
    server, stub, alice_client
):
    body = send_held_reply(alice_client, stub, [])  # headers and role chunk, then silence
    reply_id = body["assistant_message"]["id"]

    stopped = alice_client.http.post(f"/api/messages/{reply_id}/stop/")
    assert stopped.status_code == 200
    assert stopped.json()["status"] == "stopped"
    assert stub.requests[0].wait_disconnected()
    reply = Message.objects.get(pk=reply_id)
    assert (reply.status, reply.content, reply.usage_source) == ("stopped", "", "estimated")
    assert reply.prompt_tokens > 0
    events = alice_client.events(body["stream_url"])
    assert events[-1].name == "done"
    assert events[-1].data["message"]["status"] == "stopped"


def test_stop_after_some_tokens_stores_exactly_the_streamed_text_and_ends_every_stream(
    server, stub, alice_client, client_for, alice
):
    gate = Gate()
    stub.queue(gated_stream(["Hel", "lo"], gate, after=["!"]))
    conversation = alice_client.new_conversation()
    body = alice_client.send(conversation["id"], "Greet me").json()
    reply_id = body["assistant_message"]["id"]
    gate.wait_reached()

    tabs = [alice_client, client_for(alice)]
    seen: dict[int, list] = {}
    ready = threading.Barrier(len(tabs) + 1)

    def watch(index, client):
        with client.http.stream("GET", body["stream_url"]) as response:
            events = read_events(response.iter_bytes())
            seen[index] = [next(events), next(events)]
            ready.wait()
            seen[index].extend(events)

    threads = [threading.Thread(target=watch, args=(i, c)) for i, c in enumerate(tabs)]
    for thread in threads:
        thread.start()
    ready.wait()
    response = client_for(alice).http.post(f"/api/messages/{reply_id}/stop/")
    for thread in threads:
        thread.join(30)

    assert response.json()["content"] == "Hello"
    assert stub.requests[0].wait_disconnected()
    reply = Message.objects.get(pk=reply_id)
    assert (reply.status, reply.content, reply.usage_source) == ("stopped", "Hello", "estimated")
    assert reply.completion_tokens == 2  # "Hello" is 5 characters, about 4 to a token
    for events in seen.values():
        assert text_of(events) == "Hello"
        assert events[-1].name == "done"
        assert events[-1].data["message"]["status"] == "stopped"


def test_a_stopped_reply_in_chinese_is_estimated_at_a_token_a_character(server, stub, alice_client):
    # No usage from the provider on a stop: four characters a token would count a fourth.
    gate = Gate()
    stub.queue(gated_stream(["你好", "世界"], gate))
    conversation = alice_client.new_conversation()
    body = alice_client.send(conversation["id"], "用中文打个招呼").json()
    gate.wait_reached()
    alice_client.http.post(f"/api/messages/{body['assistant_message']['id']}/stop/")
    reply = Message.objects.get(pk=body["assistant_message"]["id"])
    assert (reply.status, reply.content, reply.usage_source) == ("stopped", "你好世界", "estimated")
    assert (reply.prompt_tokens, reply.completion_tokens) == (7 + 4, 4)  # 4 for the message


def test_stopping_a_finished_reply_changes_nothing(server, stub, alice_client):
    conversation = alice_client.new_conversation()
    body = alice_client.send(conversation["id"], "Hi").json()
    reply_id = body["assistant_message"]["id"]
    final = alice_client.wait_final(conversation["id"], reply_id)
    response = alice_client.http.post(f"/api/messages/{reply_id}/stop/")
    assert response.status_code == 200
    assert response.json()["status"] == "complete"
    assert response.json()["content"] == final["content"]


def test_stopping_a_user_message_is_a_400_and_stops_nothing(server, stub, alice_client):
    body = send_held_reply(alice_client, stub, ["Still"])
    response = alice_client.http.post(f"/api/messages/{body['user_message']['id']}/stop/")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "not_a_reply"
    reply = Message.objects.get(pk=body["assistant_message"]["id"])
    assert reply.is_active
    alice_client.http.post(f"/api/messages/{reply.pk}/stop/")  # not left to the next test


def test_deleting_a_conversation_stops_its_running_reply_first(server, stub, alice_client):
    body = send_held_reply(alice_client, stub, ["Partial"])
    conversation_id = body["user_message"]["conversation"]

    response = alice_client.http.delete(f"/api/conversations/{conversation_id}/")
    assert response.status_code == 204
    assert stub.requests[0].wait_disconnected()
    assert not Conversation.objects.filter(pk=conversation_id).exists()
    assert not Message.objects.filter(conversation_id=conversation_id).exists()


def test_the_last_event_says_what_is_stored_when_another_process_stored_it_first(
    start_server, stub, client_for, alice
):
    # A stop its producer did not answer in time is stored by the process that took it
    # (recovery.stop_reply_now); the producer, failing afterwards, must not say "error".
    server = start_server(CHATSITE_CHECKPOINT_SECONDS="60")  # no tick notices it meanwhile
    client = client_for(alice, base_url=server.url)
    gate = Gate()
    stub.queue(Script(steps=[openai_chunk("Hello"), gate, "drop"]))
    conversation = client.new_conversation()
    body = client.send(conversation["id"], "Go").json()
    gate.wait_reached()
    reply_id = body["assistant_message"]["id"]
    assert end_without_producer(Message.objects.get(pk=reply_id), "stopped")
    gate.open()  # the provider drops the connection: the producer's own outcome is a failure
    events = client.events(body["stream_url"])
    assert events[-1].name == "done"
    assert events[-1].data["message"]["status"] == "stopped"
    stored = Message.objects.get(pk=reply_id)
    assert (stored.status, stored.content, stored.usage_source) == ("stopped", "", "estimated")
    # Its prompt was sent and billed: counted (budgets), though its text was never saved.
    assert stored.prompt_tokens > 0 and stored.total_tokens == stored.prompt_tokens


def test_a_stop_between_storing_a_reply_and_starting_it_means_it_is_never_asked(alice, stub):
    # The message POST stores a reply, then starts its producer; a stop (or a delete) that
    # finds it in between must not leave the model generating a reply stored as stopped.
    stub.reset()
    stub.queue(openai_stream(["Never", " asked"]))
    conversation = Conversation.objects.create(owner=alice, model=default_model().id)
    _, reply, _ = conversation.post_user_message("Hi", default_model(), None, PRODUCER_ID)

    async def stop_then_start() -> None:
        deleting = sync_to_async(stop_reply_now)(reply, producers.CONVERSATION_DELETED)
        stopping = asyncio.create_task(deleting)
        # Set from the stop's thread: polled (a wait, not a timing check).
        while reply.pk not in producers._stopped_before_start:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await start_reply(reply, stub_job(reply, stub))
        await asyncio.wait_for(stopping, 30)  # a hang guard, not a timing check
        await http.client().aclose()  # its kept connection must not outlive this loop

    asyncio.run(stop_then_start())
    reply.refresh_from_db()
    assert (reply.status, reply.content) == ("stopped", "")
    assert reply.error_code == "conversation_deleted"  # the reason the stop came with
    assert stub.requests == []  # the provider was never asked


def start_after_stops_from_elsewhere(alice, stub, later_stops: int) -> Message:
    """Store a reply, pass on a stop for it from another process (as the event log's stop
    listener does), then `later_stops` for other replies, then start it; the reply as stored."""
    stub.reset()
    stub.queue(openai_stream(["Asked", " anyway"]))
    conversation = Conversation.objects.create(owner=alice, model=default_model().id)
    _, reply, _ = conversation.post_user_message("Hi", default_model(), None, PRODUCER_ID)

    async def stops_then_start() -> None:
        producers.stop_if_produced_here(reply.pk, producers.CONVERSATION_DELETED)
        for _ in range(later_stops):
            producers.stop_if_produced_here(uuid.uuid4())
        await start_reply(reply, stub_job(reply, stub))
        async with asyncio.timeout(30):  # a hang guard, not a timing check
            while producers.running_replies():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        await http.client().aclose()  # its kept connection must not outlive this loop

    asyncio.run(stops_then_start())
    reply.refresh_from_db()
    return reply


def test_a_stop_another_process_took_before_the_reply_started_means_it_is_never_asked(alice, stub):
    # That process stored it as stopped (recovery.stop_reply_now); starting here must not
    # leave the model generating, and billing, a reply no one will see.
    reply = start_after_stops_from_elsewhere(alice, stub, later_stops=0)
    assert (reply.status, reply.content) == ("stopped", "")
    assert reply.error_code == "conversation_deleted"  # the reason the stop came with
    assert stub.requests == []
    assert reply.total_tokens == 0  # never asked, so never billed


def test_stops_from_elsewhere_are_kept_only_until_newer_ones_push_them_out(alice, stub):
    # Every process hears every stop: those for other processes' replies must not pile up.
    kept = producers.STOPS_FROM_ELSEWHERE_KEPT
    reply = start_after_stops_from_elsewhere(alice, stub, later_stops=kept)
    assert len(producers._stops_from_elsewhere) == kept
    producers._stops_from_elsewhere.clear()  # the other tests' replies start from none
    assert (reply.status, reply.content) == ("complete", "Asked anyway")


def test_a_window_following_a_reply_is_told_its_conversation_was_deleted(
    server, stub, alice_client
):
    body = send_held_reply(alice_client, stub, ["Partial"])
    conversation_id = body["user_message"]["conversation"]
    with alice_client.http.stream("GET", body["stream_url"]) as response:
        events = read_events(response.iter_bytes())
        assert next(events).name == "delta"  # followed, as by another window
        deleted = alice_client.http.delete(f"/api/conversations/{conversation_id}/")
        assert deleted.status_code == 204
        last = list(events)[-1]
    assert last.name == "done"
    message = last.data["message"]
    assert (message["status"], message["content"]) == ("stopped", "Partial")
    assert message["error_code"] == "conversation_deleted"
    assert message["error"] == "The conversation was deleted while this reply was being written."


def test_a_reply_still_generating_past_the_limit_is_stopped_with_its_text(
    start_server, stub, client_for, alice
):
    # A model caught repeating itself, with no length limit, would hold the conversation for
    # good: past CHATSITE_REPLY_MAX_SECONDS the reply stops as a Stop stops it.
    server = start_server(CHATSITE_REPLY_MAX_SECONDS="2")  # time enough for the first tokens
    client = client_for(alice, base_url=server.url)
    body = send_held_reply(client, stub, ["Again", " and again"])  # then never a Finish
    conversation_id = body["user_message"]["conversation"]
    reply = client.wait_final(conversation_id, body["assistant_message"]["id"])
    assert (reply["status"], reply["content"]) == ("stopped", "Again and again")
    assert reply["error_code"] == "too_long"
    assert "stopped after 2 seconds" in reply["error"]
    assert "CHATSITE_REPLY_MAX_SECONDS" in reply["error"]
    assert stub.requests[-1].wait_disconnected(), "the provider was still generating"
    assert client.send(conversation_id, "Go on").status_code == 201  # free for the next one


def stopped_in_retry_wait(alice, stub, waits: int) -> Message:
    """Store a reply, start it against the stub's queued scripts and stop it once it waits to
    retry for the `waits`-th time (the stop ends the wait); the reply as stored."""
    conversation = Conversation.objects.create(owner=alice, model=default_model().id)
    _, reply, _ = conversation.post_user_message("Hi", default_model(), None, PRODUCER_ID)

    async def stop_in_the_wait() -> None:
        await start_reply(reply, stub_job(reply, stub))
        producer = producers._producers[reply.pk]
        async with asyncio.timeout(30):  # a hang guard, not a timing check
            while sum("retry_in_seconds" in a for a in producer.attempts) < waits:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            assert await producers.stop_reply(reply.pk)
        await http.client().aclose()  # its kept connection must not outlive this loop

    asyncio.run(stop_in_the_wait())
    reply.refresh_from_db()
    return reply


def test_a_stop_while_waiting_to_retry_an_unbilled_refusal_counts_no_tokens(alice, stub, settings):
    # The provider answered 503 (not billed) and the retry waits: the stop ends the wait.
    settings.CHATSITE_RETRY_BACKOFF_SECONDS = settings.CHATSITE_RETRY_MAX_SECONDS = 600
    stub.reset()
    stub.queue(json_error(503, "overloaded"), openai_stream(["Never", " asked"]))
    reply = stopped_in_retry_wait(alice, stub, waits=1)
    assert (reply.status, reply.content) == ("stopped", "")
    assert (reply.prompt_tokens, reply.total_tokens) == (0, 0)  # the budgets count none
    assert len(stub.requests) == 1  # the retry was never sent


def test_a_stop_while_waiting_to_retry_after_a_billed_attempt_still_counts_it(
    alice, stub, settings
):
    # DeepSeek cut the first attempt off short of capacity (billed, with its usage), the
    # second was refused with a 503 (not billed): the stop in the wait still counts a prompt.
    settings.CHATSITE_RETRY_BACKOFF_SECONDS, settings.CHATSITE_RETRY_MAX_SECONDS = 0, 600
    stub.reset()
    cut_off = openai_stream([], usage=(4, 0), finish_reason="insufficient_system_resource")
    stub.queue(cut_off, json_error(503, "overloaded", headers={"Retry-After": "600"}))
    reply = stopped_in_retry_wait(alice, stub, waits=2)
    assert reply.status == "stopped" and reply.prompt_tokens > 0  # the budgets count it
    assert len(stub.requests) == 2
