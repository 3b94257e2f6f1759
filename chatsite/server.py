"""daphne on uvloop's event loop: `python -m chatsite.server <daphne's arguments>`.

Twisted's asyncio reactor is installed on a uvloop loop before daphne is imported: daphne
keeps an asyncio reactor it finds installed (instead of making one on asyncio's own loop).
No event loop policy is involved (Python deprecates them from 3.14). The loop runs every
stream's work; on uvloop's, chatsite's own first token came sooner in most A/B pairs, at the
same CPU per chunk (bench/HISTORY.md; the benchmark serves its floor relay the same way).
`./dev serve`, the tests' servers and the benchmark all start daphne through this.
"""

import uvloop
from twisted.internet import asyncioreactor


def main() -> None:
    asyncioreactor.install(uvloop.new_event_loop())
    from daphne.cli import CommandLineInterface  # imported now: it looks for a reactor

    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
