"""PHP bracket encoding of parameters, as the portal parses them (`filter[>ID]=5&select[]=ID`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote


def _pairs(prefix: str, value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _pairs(f"{prefix}[{key}]", item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _pairs(f"{prefix}[]", item)
    elif isinstance(value, bool):
        yield prefix, "Y" if value else "N"
    elif value is None:
        yield prefix, ""
    else:
        yield prefix, str(value)


def encode(params: dict[str, Any]) -> str:
    """Query string with every key and value percent-encoded (`>=` inside brackets included)."""
    parts = []
    for name, value in params.items():
        for key, text in _pairs(name, value):
            parts.append(f"{quote(key, safe='')}={quote(text, safe='')}")
    return "&".join(parts)
