"""daphne on uvloop's event loop: `python -m chatsite.server <daphne's arguments>`.

daphne makes its event loop as `daphne.server` is imported (Twisted's asyncio reactor runs on
it), so uvloop's loop policy is set before that import. The loop runs every stream's work, and
uvloop's, in C, brought a reply's first token sooner than asyncio's own, a stream at a time
(bench/HISTORY.md; the benchmark serves its floor relay the same way). `./dev serve`, the
tests' servers and the benchmark all start daphne through this.
"""

import asyncio

import uvloop


def main() -> None:
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    from daphne.cli import CommandLineInterface  # imported now: it makes daphne's loop

    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
