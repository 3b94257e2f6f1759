"""What a request reads from the database before a reply's first token: the session and the
user come from the cache, the owner's budget with the conversation. Logging out still ends a session
at once, in the server process that cached it."""

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from conversations.apikeys import create_key
from conversations.models import Conversation, Message, UserBudget
from tests.chats import add_chat
from tests.client import form_login, form_logout, is_logged_in


def statements(queries: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in queries.captured_queries]


def test_a_logged_in_request_reads_its_session_and_user_from_the_cache(alice):
    browser = Client()
    browser.force_login(alice)
    assert browser.get("/api/conversations/").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert browser.get("/api/conversations/").status_code == 200
    read = statements(queries)
    assert not [sql for sql in read if "django_session" in sql], read
    # A changed user is still seen at once: tests/test_user_cache.py.
    assert not [sql for sql in read if "auth_user" in sql], read


def over_budget_chat(alice) -> tuple[Conversation, Message]:
    """A conversation of alice's, who has used up her daily tokens: a new reply gets a 429."""
    UserBudget.objects.create(user=alice, requests_per_minute=0, tokens_per_day=1)
    conversation = add_chat(alice, "Budget", total_tokens=5)
    return conversation, conversation.messages.get(role="user")


def refused_for_budget(alice, path: str) -> list[str]:
    """POST `path` as alice; assert the budget refused it; the statements it ran."""
    browser = Client()
    browser.force_login(alice)
    with CaptureQueriesContext(connection) as queries:
        refused = browser.post(path, {"content": "Hi"}, content_type="application/json")
    assert refused.status_code == 429, refused.content  # the budget row was read and applied
    assert refused.json()["error"]["code"] == "token_budget_exceeded"
    return statements(queries)


def test_a_message_post_reads_the_budget_with_the_conversation(alice):
    conversation, _ = over_budget_chat(alice)
    read = refused_for_budget(alice, f"/api/conversations/{conversation.pk}/messages/")
    budget_reads = [sql for sql in read if "userbudget" in sql]
    assert len(budget_reads) == 1 and "conversations_conversation" in budget_reads[0], read


def test_a_regenerate_reads_the_budget_with_the_message_and_its_conversation(alice):
    _, question = over_budget_chat(alice)
    read = refused_for_budget(alice, f"/api/messages/{question.pk}/regenerate/")
    budget_reads = [sql for sql in read if "userbudget" in sql]
    assert len(budget_reads) == 1 and "conversations_message" in budget_reads[0], read
    assert not [sql for sql in read if sql.startswith('SELECT "conversations_conversation"')]


def test_logging_out_ends_the_session_in_the_server_that_cached_it(server, alice):
    cookies = form_login(server.url, "alice")
    assert is_logged_in(server.url, cookies)  # the session is read, and now cached
    form_logout(server.url, cookies)
    assert not is_logged_in(server.url, cookies)  # the same cookie, sent again


def test_a_completion_with_an_api_key_reads_the_budget_with_the_key(alice):
    over_budget_chat(alice)
    _, secret = create_key(alice)
    body = {"model": "openai:stub-model", "messages": [{"role": "user", "content": "Hi"}]}
    with CaptureQueriesContext(connection) as queries:
        refused = Client().post(
            "/v1/chat/completions", body, "application/json", HTTP_AUTHORIZATION=f"Bearer {secret}"
        )
    assert refused.status_code == 429, refused.content
    read = statements(queries)
    budget_reads = [sql for sql in read if "userbudget" in sql]
    assert len(budget_reads) == 1 and "conversations_apikey" in budget_reads[0], read
