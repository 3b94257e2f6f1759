"""Deltas as text that can be streamed and stored.

JSON writes a character outside the Basic Multilingual Plane (an emoji, say) as two \\u
escapes, the halves of a UTF-16 pair, and a server that cuts its text by UTF-16 units (as
JavaScript does) can put the halves in two chunks. Each half alone is no character: it could
be neither encoded as UTF-8 for the stream nor stored. So a first half waits for the second,
and a half that stays alone becomes U+FFFD, as invalid UTF-8 from a provider does. So does
NUL, which JSON can carry but PostgreSQL's text cannot hold.
"""

import re

_HALF = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


class WholeCharacters:
    """One stream of deltas (a reply's text, or its reasoning) made of whole characters."""

    __slots__ = ("held",)

    def __init__(self) -> None:
        self.held = ""  # a first half, waiting for the next delta

    def feed(self, text: str) -> str:
        """The delta's whole characters; a trailing first half is kept for the next one."""
        if "\x00" in text:
            text = text.replace("\x00", REPLACEMENT)
        if not self.held and (text.isascii() or not _HALF.search(text)):
            return text  # nearly always: nothing to join
        text, self.held = self.held + text, ""
        if "\ud800" <= text[-1] <= "\udbff":
            text, self.held = text[:-1], text[-1]
        # Pairs become their character; a half alone becomes U+FFFD.
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")

    def end(self) -> str:
        """What is left once the reply ends: U+FFFD for a first half whose second never came."""
        held, self.held = self.held, ""
        return REPLACEMENT if held else ""


def storable_text(text: str, max_length: int | None = None) -> str:
    """A provider's text other than deltas (an error's message, a finish reason) as it can be
    stored: as a whole reply's text (NUL and halves of characters become U+FFFD), cut to
    `max_length`."""
    characters = WholeCharacters()
    return (characters.feed(text) + characters.end())[:max_length]


def content_text(content: object) -> str:
    """A delta's or message's content as text: a string, or a list of parts, of which those
    with a "text" string count ({"type": "text", "text": …}: Qwen-VL's, and some
    OpenAI-compatible servers'); anything else (a number, an object, null) holds no text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""
