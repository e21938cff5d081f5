"""The API's JSON parser: bodies Python's parser accepts but nothing after it can handle are a
400 here, not a 500 further down."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


def _has_lone_surrogate(data: Any) -> bool:
    """Whether a key or string holds half a UTF-16 pair (``"\\ud800"`` is valid JSON, yet no
    text: PostgreSQL refuses it and the error body echoing it cannot be encoded)."""
    pending = [data]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


class JSONParser(parsers.JSONParser):
    """DRF's parser, also refusing a body nested beyond the interpreter's recursion limit
    (``[[[[...]]]]`` 10,000 levels deep raises RecursionError, which is no ValueError) and
    strings with unpaired surrogates."""

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
        if _has_lone_surrogate(data):
            raise ParseError("JSON parse error - a string holds an unpaired surrogate (\\ud800).")
        return data
