"""The provider client every reply shares, and httpcore, which httpx uses for proxies (and
the benchmark floor for every request)."""

import asyncio
import importlib.abc
import sys

import pytest
from httpcore._synchronization import current_async_library

from tests.stub import openai_stream


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_cookie_a_provider_sets_is_not_sent_with_later_requests(
    start_server, client_for, alice, charlie, stub, host
):
    # One client carries every user's replies: a cookie set in answer to alice's request must
    # not ride along on charlie's (an affinity or bot-check cookie is the provider's business).
    # aiohttp's own jar keeps cookies from host names only, httpx's from addresses too.
    process = start_server(OPENAI_BASE_URL=stub.url.replace("127.0.0.1", host) + "/v1")
    with_cookie = openai_stream(["Hi"])
    with_cookie.headers["Set-Cookie"] = "affinity=alice-node; Path=/; Max-Age=3600"
    stub.queue(with_cookie, openai_stream(["Hello"]))
    for user in (alice, charlie):
        client = client_for(user, process.url)
        conversation = client.new_conversation()
        reply_id = client.send(conversation["id"], "Hi").json()["assistant_message"]["id"]
        assert client.wait_final(conversation["id"], reply_id)["status"] == "complete"
    assert len(stub.requests) == 2
    assert "cookie" not in stub.requests[1].headers


class ImportSearches(importlib.abc.MetaPathFinder):
    """Records every module the import system searches for (and finds nothing itself)."""

    def __init__(self) -> None:
        self.searched: list[str] = []

    def find_spec(self, name, path, target=None):
        self.searched.append(name)
        return None


def test_httpcore_finds_its_async_library_without_searching_the_import_path():
    # httpcore asks which async library runs for every lock and event of a request, importing
    # sniffio each time. Without sniffio installed that import fails, and a failed import is
    # not remembered: each ask searched every folder on sys.path (encode/httpcore#1103).
    searches = ImportSearches()
    sys.meta_path.insert(0, searches)
    try:

        async def ask() -> str:
            return current_async_library()

        assert asyncio.run(ask()) == "asyncio"
    finally:
        sys.meta_path.remove(searches)
    assert "sniffio" not in searches.searched
