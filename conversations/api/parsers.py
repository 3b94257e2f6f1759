"""The API's JSON parser: DRF's, with a body nested too deeply for Python's json module (a
RecursionError, which DRF's parser lets through as a 500) refused as malformed JSON."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None) -> object:  # noqa: ANN001
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
