"""The API's JSON parser: DRF's, with nesting too deep for Python answered as bad input."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class StrictJSONParser(JSONParser):
    """DRF's ``JSONParser``; a body nested deeper than Python's parser goes (``[[[[…``) is a 400.

    The standard library raises ``RecursionError`` for it, which DRF lets through as a 500;
    a 1 MiB body can nest far deeper than that.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
