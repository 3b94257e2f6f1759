"""httpcore, which httpx uses for proxies (and the benchmark floor for every request): costs
it adds to each request."""

import asyncio
import importlib.abc
import sys

from httpcore._synchronization import current_async_library


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
