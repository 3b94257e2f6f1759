"""How the API reads a request: DRF's JSON parser, with a body nested too deeply for Python's
json module (a RecursionError, which DRF's parser lets through as a 500) refused as malformed
JSON; and, for views that answer with a stream or a file, any Accept header."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None) -> object:  # noqa: ANN001
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None


class AnyAccept(DefaultContentNegotiation):
    """Serves any Accept header what the view sends (an event stream, a Markdown file), as
    OpenAI's API does: with JSON its only renderer, DRF would answer `Accept:
    text/event-stream` with a 406 before the view ran. Errors still come as JSON."""

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        return renderers[0], renderers[0].media_type
