"""Deleting a conversation while a message is sent from another window: a reply started
between the delete's stops and its delete is stopped too (with why, its usage kept), never
deleted generating; a message stored into a conversation deleted meanwhile is a 404."""

import pytest
from django.test import Client

from conversations.api import views as api_views
from conversations.api.errors import json_exception_handler
from conversations.api.views import STILL_STARTING
from conversations.budgets import delete_conversation, rate_held
from conversations.models import Conversation, DeletedReplyUsage, Message, UserBudget
from conversations.producers import PRODUCER_ID
from conversations.providers.registry import default_model
from tests.chats import add_chat
from tests.replies import send_held_reply


def test_a_reply_started_after_a_deletes_stops_is_stopped_too_not_deleted_generating(
    server, stub, alice, alice_client
):
    # A reply running when the delete comes to delete: as if its message came from another
    # window just after the delete stopped the conversation's replies.
    body = send_held_reply(alice_client, stub, ["Partial"])
    conversation = Conversation.objects.get(pk=body["user_message"]["conversation"])
    assert delete_conversation(conversation) is False  # refused: its reply would run on
    reply = Message.objects.get(pk=body["assistant_message"]["id"])
    assert reply.is_active

    deleted = alice_client.http.delete(f"/api/conversations/{conversation.pk}/")
    assert deleted.status_code == 204
    assert stub.requests[0].wait_disconnected(), "the provider was still generating"
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    (kept,) = DeletedReplyUsage.objects.filter(owner=alice)  # the stopped reply's usage counts
    assert kept.tokens > 0


@pytest.mark.parametrize("per_minute", [None, 5], ids=["no-rate-limit", "rate-limit"])
def test_a_message_stored_into_a_conversation_deleted_meanwhile_is_refused_as_gone(
    alice, per_minute
):
    # With a requests-per-minute limit the message is stored inside rate_held's transaction,
    # whose COMMIT would be the first to see the deleted row (foreign keys are checked then).
    UserBudget.objects.create(user=alice, requests_per_minute=per_minute)
    conversation = Conversation.objects.create(owner=alice, model=default_model().id)
    Conversation.objects.filter(pk=conversation.pk).delete()  # from another window
    with pytest.raises(Conversation.DoesNotExist), rate_held(alice):  # the API's 404, not a 500
        conversation.post_user_message("Hi", default_model(), None, PRODUCER_ID)
    assert not Message.objects.exists()


def test_a_conversation_renamed_as_another_window_deletes_it_is_not_found(alice):
    conversation = Conversation.objects.create(owner=alice, model=default_model().id)
    Conversation.objects.filter(pk=conversation.pk).delete()  # from another window
    with pytest.raises(Conversation.DoesNotExist):  # the API's 404, not save()'s DatabaseError
        conversation.change(title="Renamed", system_prompt="Be brief.")
    assert not Conversation.objects.exists()


def test_a_row_deleted_while_its_request_ran_is_answered_as_not_found():
    # A Stop reading its reply back once stored, after a delete from another window.
    response = json_exception_handler(Message.DoesNotExist(), {})
    assert response.status_code == 404
    assert response.data == {"error": {"code": "not_found", "message": "Not found."}}


def test_a_regenerate_in_a_conversation_deleted_meanwhile_is_a_404(
    server, stub, alice, alice_client
):
    conversation = add_chat(alice, "Soon gone")
    asked = conversation.messages.get(role="user")
    Conversation.objects.filter(pk=conversation.pk).delete()
    with pytest.raises(Conversation.DoesNotExist):  # not "a reply is still being generated"
        conversation.add_reply(asked, default_model(), None, PRODUCER_ID)
    gone = alice_client.http.post(f"/api/messages/{asked.pk}/regenerate/", json={})
    assert gone.status_code == 404 and stub.requests == []


def test_a_delete_with_no_round_left_to_delete_in_is_a_409_that_deletes_nothing(alice, monkeypatch):
    # As when replies keep starting from another window after each of the delete's rounds of
    # stops; the rounds themselves are not reached here (they need that window's timing).
    monkeypatch.setattr(api_views, "DELETE_ROUNDS", 0)
    conversation = add_chat(alice, "Busy elsewhere")
    browser = Client()
    browser.force_login(alice)
    refused = browser.delete(f"/api/conversations/{conversation.pk}/")
    assert refused.status_code == 409
    assert refused.json()["error"] == {"code": "reply_in_progress", "message": STILL_STARTING}
    assert Conversation.objects.filter(pk=conversation.pk).exists()
    assert conversation.messages.count() == 2
