"""An incremental Server-Sent Events parser that follows the WHATWG rules exactly.

httpx's aiter_lines() splits on characters SSE does not treat as line ends, and httpx-sse
keeps a leading BOM and dispatches events without data, so chatsite parses the bytes itself:
CR, LF and CRLF line ends (also split across reads), one leading BOM, comments, multi-line
data, event/id/retry fields, and a last event without its blank line is discarded.
"""

import codecs
import re
from dataclasses import dataclass

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(slots=True)
class ServerSentEvent:
    data: str
    event: str = "message"
    id: str = ""
    retry: int | None = None


class SSEDecoder:
    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._at_start = True
        self._skip_lf = False  # the last read ended in CR: an LF next belongs to it
        self._data: list[str] = []
        self._event = ""
        self.last_event_id = ""
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Parse one read of bytes; return the events it completes."""
        text = self._text.decode(chunk)
        if not text:
            return []  # an empty read, or part of a multi-byte character
        if self._skip_lf:
            text = text.removeprefix("\n")  # the second half of a CRLF split across reads
        text = self._buffer + text
        if self._at_start and text:
            self._at_start = False
            text = text.removeprefix("\ufeff")
        # Most servers end lines with LF alone: str.split is several times faster than the
        # regex, which is needed only when a CR is there. The last piece is an unended line.
        lines = _LINE_END.split(text) if "\r" in text else text.split("\n")
        self._buffer = lines.pop()
        # A final CR ends its line now (no waiting for the next read), but a following LF
        # must not end another one.
        self._skip_lf = text.endswith("\r")
        events = []
        for line in lines:
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def close(self) -> list[ServerSentEvent]:
        """End of stream: an unfinished line and event are dropped, as the rules say."""
        self._buffer = ""
        self._data.clear()
        self._event = ""
        return []

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith("data: "):  # nearly every line a provider sends
            self._data.append(line[6:])
            return None
        if line[0] == ":":
            return None
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\x00" not in value:
                self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit() and len(value) <= 18:
            self.retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = ServerSentEvent(
            data="\n".join(self._data),
            event=self._event or "message",
            id=self.last_event_id,
            retry=self.retry,
        )
        self._data = []
        self._event = ""
        return event
