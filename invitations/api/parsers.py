"""The API's JSON parser: DRF's, refusing nesting deeper than the limit with 400."""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from invitations import validation


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            # json raises it (not ValueError) past Python's recursion limit: `[` x 5,000.
            raise ParseError("JSON nested too deeply.") from None
        if not validation.nesting_ok(data):
            raise ParseError("JSON nested too deeply.")
        return data
